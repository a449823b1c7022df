"""``newsmon feedback export``: the analysts' labels as an evaluation set; and the live
precision that ``newsmon eval --feedback`` prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from newsmon.cli import _common as common
from newsmon.cli._common import fail

feedback_app = common.command_group("feedback", "The analysts' answers from the inbox, as data.")


@feedback_app.command("export")
def feedback_export(
    config: common.ConfigOpt = None,
    since: common.SinceOpt = "365d",
    until: common.UntilOpt = None,
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """Write the alerts labelled confirmed or false positive as JSON Lines in the eval format
    (id, lang, url, title, text, labels, hard_negative, reason; plus rule, topic,
    source_labels, feedback). ``newsmon eval FILE`` re-runs the rules on it."""
    from newsmon.pipeline.store import StoreUnavailable, open_store
    from newsmon.serve.measure import export_records

    loaded = common.settings(config)
    start, end = common.window(since, until)
    try:
        records = export_records(open_store(loaded.search, loaded.state_dir), start, end)
    except StoreUnavailable as exc:
        raise fail(f"search server unavailable: {exc}", common.EXIT_FAILED) from exc
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if out is None:
        typer.echo(lines, nl=False)
    else:
        out.write_text(lines, encoding="utf-8")
    typer.echo(f"{len(records)} labelled alerts", err=True)


def eval_feedback(file: Path | None, config: Path | None, as_json: bool,
                  since: str = "365d") -> None:
    """``newsmon eval --feedback [FILE]``: live precision per rule, language and source label,
    from an export FILE or, without one, from the labelled alerts in the store."""
    from newsmon.serve.measure import live_precision

    if file is not None:
        try:
            with file.open(encoding="utf-8") as handle:
                records = [json.loads(line) for line in handle if line.strip()]
        except (OSError, ValueError) as exc:
            raise fail(f"{file}: {exc}", common.EXIT_CONFIG) from exc
        result = live_precision(records)
    else:
        from newsmon.pipeline.store import StoreUnavailable, open_store
        from newsmon.serve.measure import labelled_alerts

        loaded = common.settings(config)
        start, end = common.window(since, None)
        try:
            result = live_precision(
                labelled_alerts(open_store(loaded.search, loaded.state_dir), start, end))
        except StoreUnavailable as exc:
            raise fail(f"search server unavailable: {exc}", common.EXIT_FAILED) from exc
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(result.format_text())
