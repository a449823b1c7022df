"""``newsmon deadletters [--replay]``: what no stage could handle."""

from __future__ import annotations

from typing import Annotated

import typer

from newsmon.cli._common import ConfigOpt, app, complete, settings


@app.command()
def deadletters(
    config: ConfigOpt = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage (decode, normalize, ...).")] = (
        None
    ),
    replay: Annotated[
        bool, typer.Option("--replay", help="Run them through the pipeline again (after a fix).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the items no stage could handle, with stage, source and error; replay them."""
    from newsmon.pipeline import deadletters as dl
    from newsmon.pipeline.store import open_store

    loaded = settings(config)
    store = open_store(loaded.search, loaded.state_dir)
    letters = dl.pending(store, stage)
    if not replay:
        for letter in letters:
            if as_json:
                typer.echo(letter.model_dump_json())
            else:
                typer.echo(f"{letter.created_at:%Y-%m-%d %H:%M} {letter.stage:<9} "
                           f"{letter.source_id:<24} {letter.error[:120]}")
        typer.echo(f"{len(letters)} dead letters pending", err=True)
        return
    from newsmon.ops.orchestrate import run_context
    from newsmon.pipeline.jobs import run_records

    ctx = run_context(complete(config, with_feeds=False))
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
        run_records([dl.as_record(letter) for letter in letters], ctx)
    except BaseException:
        dl.mark(store, letters, replayed=False)
        raise
    store.refresh("dead-letters")
    typer.echo(f"replayed {len(letters)}; {len(dl.pending(store, stage))} still pending")
