"""``newsmon report``: one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsmon.cli._common import (
    EXIT_FAILED,
    ConfigOpt,
    SinceOpt,
    UntilOpt,
    app,
    fail,
    settings,
    window,
)


@app.command()
def report(
    config: ConfigOpt = None,
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    title: Annotated[str, typer.Option(help="The page's title.")] = "newsmon report",
) -> None:
    """Write one self-contained HTML page: volume per topic, language and source, top
    stories, latest alerts with evidence, source health, dead letters (no Kibana needed)."""
    from newsmon.ops.report import build
    from newsmon.pipeline.store import StoreUnavailable, open_store

    loaded = settings(config)
    start, end = window(since, until)
    store = open_store(loaded.search, loaded.state_dir)
    try:
        page, summary = build(store, start, end, title=title)
    except StoreUnavailable as exc:
        raise fail(f"search server unavailable: {exc}", EXIT_FAILED) from exc
    out.write_text(page, encoding="utf-8")
    totals = ", ".join(f"{v} {k}" for k, v in summary.totals.items())
    typer.echo(f"{out}: {totals}")
