"""``newsmon deadletters [--replay]`` and ``newsmon deadletters discard ID``: what no stage
could handle."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from newsmon.cli._common import EXIT_CONFIG, ConfigOpt, command_group, complete, fail, settings

deadletters_app = command_group(
    "deadletters", "List the items no stage could handle, replay them after a fix, or "
    "discard one that no fix will handle.", invoke_without_command=True, no_args_is_help=False)

#: Characters of a letter's id shown in the table; `discard` takes any unique prefix.
SHORT_ID = 12


@deadletters_app.callback()
def deadletters(
    ctx: typer.Context,
    config: ConfigOpt = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage (decode, normalize, ...).")] = (
        None
    ),
    replay: Annotated[
        bool, typer.Option("--replay", help="Run them through the pipeline again (after a fix).")
    ] = False,
    show_discarded: Annotated[
        bool, typer.Option("--discarded", help="List the discarded letters instead, with when "
                           "and why.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the pending items no stage could handle (id, time, stage, source, the first line
    of the error); replay them. Discarded letters are left out (see --discarded)."""
    if ctx.invoked_subcommand is not None:
        return
    from newsmon.pipeline import deadletters as dl
    from newsmon.pipeline.store import open_store

    loaded = settings(config)
    store = open_store(loaded.search, loaded.state_dir)
    if show_discarded:
        gone = dl.discarded(store)
        for letter, when, reason in gone:
            if as_json:
                typer.echo(json.dumps(letter.model_dump(mode="json") | {
                    "discarded_at": when, "discard_reason": reason}, ensure_ascii=False))
            else:
                typer.echo(f"{letter.dl_id[:SHORT_ID]}  {when[:16]}  {letter.stage:<9} "
                           f"{letter.source_id:<24} {dl.error_line(reason or '-', 80)}")
        typer.echo(f"{len(gone)} dead letters discarded", err=True)
        return
    letters = dl.pending(store, stage)
    if not replay:
        for letter in letters:
            if as_json:
                typer.echo(letter.model_dump_json())
            else:
                typer.echo(f"{letter.dl_id[:SHORT_ID]}  {letter.created_at:%Y-%m-%d %H:%M} "
                           f"{letter.stage:<9} {letter.source_id:<24} "
                           f"{dl.error_line(letter.error)}")
        typer.echo(f"{len(letters)} dead letters pending", err=True)
        return
    from newsmon.ops.orchestrate import run_context
    from newsmon.pipeline.jobs import run_records

    run_ctx = run_context(complete(config, with_feeds=False))
    # A poll-stage letter is a fetch that failed, not a record to run again: the poller
    # fetches the source again on its own schedule (now: `newsmon poll --once --force`), so
    # replaying one only marks it handled; if it fails again it is parked again.
    polled = [letter for letter in letters if letter.stage == "poll"]
    letters = [letter for letter in letters if letter.stage != "poll"]
    if polled:
        dl.mark(store, polled, replayed=True)
        typer.echo(f"{len(polled)} poll dead letters marked handled (the poller fetches their "
                   "sources again; `newsmon poll --once --force` does it now)", err=True)
    # A notify-stage letter is a message a receiver refused: replaying it owes the alert's
    # channel the message again (`newsmon alerts deliver`, or the next run, sends it).
    parked = [letter for letter in letters if letter.stage == "notify"]
    letters = [letter for letter in letters if letter.stage != "notify"]
    if parked:
        from newsmon.pipeline.alerts.delivery import requeue_parked

        requeue_parked(store, parked)
        dl.mark(store, parked, replayed=True)
        typer.echo(f"{len(parked)} refused deliveries owed again (`newsmon alerts deliver` "
                   "sends them now)", err=True)
    dl.mark(store, letters, replayed=True)
    try:
        run_records([dl.as_record(letter) for letter in letters], run_ctx)
    except BaseException:
        dl.mark(store, letters, replayed=False)
        raise
    store.refresh("dead-letters")
    typer.echo(f"replayed {len(letters)}; {len(dl.pending(store, stage))} still pending")


@deadletters_app.command("discard")
def discard(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help="The letter's id, or the "
                                             "first characters the listing shows.")],
    reason: Annotated[str, typer.Option(help="Why it cannot be fixed (kept on the letter).")]
    = "",
    config: ConfigOpt = None,
) -> None:
    """Discard a dead letter that no fix will handle: it is kept, with when and why, but no
    longer listed as pending nor replayed (`newsmon deadletters --discarded` lists them)."""
    from datetime import UTC, datetime

    from newsmon.pipeline import deadletters as dl
    from newsmon.pipeline.store import open_store

    loaded = settings(config)
    store = open_store(loaded.search, loaded.state_dir)
    try:
        letter = dl.find_pending(store, letter_id)
    except dl.UnknownLetter as exc:
        raise fail(f"{exc} (see `newsmon deadletters`)", EXIT_CONFIG) from exc
    dl.discard(store, letter, reason, datetime.now(UTC))
    typer.echo(f"{letter.dl_id} discarded ({letter.stage}, {letter.source_id})")
