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
    stories, latest alerts with evidence, source health, dead letters (no Kibana needed).

    Without --config and without NEWSMON_CONFIG_DIR, after `newsmon run --demo` in this
    directory, the report reads the demo's store (.newsmon/demo/config/newsmon.yaml), and
    says so; otherwise the default settings ($NEWSMON_CONFIG_DIR/newsmon.yaml)."""
    import os

    from newsmon.ops.orchestrate import demo_config_here
    from newsmon.ops.report import build
    from newsmon.pipeline.store import StoreUnavailable, open_store

    if config is None and "NEWSMON_CONFIG_DIR" not in os.environ and (
            demo := demo_config_here()) is not None:
        typer.echo(f"report: reading the demo's store ({demo}); --config for another",
                   err=True)
        config = demo
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
