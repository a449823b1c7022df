"""``newsmon run [--demo]``: poll once and run the pipeline, in one process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from newsmon.cli._common import (
    EXIT_CONFIG,
    ConfigOpt,
    app,
    complete,
    exclusive,
    fail,
    poll_status,
    run_failed,
)
from newsmon.config import shipped_config_dir
from newsmon.configfile import ConfigError


@app.command()
def run(
    config: ConfigOpt = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Use the shipped demo feeds and the embedded store.")
    ] = False,
) -> None:
    """Poll once and run the pipeline in one process.

    On the embedded default (search backend `embedded`, as in --demo) no Kafka and no search
    server are needed: items go straight to the pipeline, documents to a local SQLite store,
    alerts to the console. Otherwise items go through Kafka to the search server.

    --demo writes its configuration to .newsmon/demo/config (the demo feeds' dates moved to
    today), runs it, and prints the commands to try next; `newsmon report` without --config
    then reads the demo's store.
    """
    from newsmon.kafka import KafkaUnavailable
    from newsmon.ops.orchestrate import demo_next_steps, prepare_demo, run_once
    from newsmon.pipeline.store import StoreSetupError, StoreUnavailable

    if demo:
        try:
            # The demo's own config, its fixture dates moved to today (orchestrate.prepare_demo).
            config = prepare_demo(shipped_config_dir() / "demo", datetime.now(UTC))
        except ConfigError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc
    loaded = complete(config)
    with exclusive(loaded.settings, "poll", "pipeline"):
        try:
            report = run_once(loaded, demo=demo, say=typer.echo)
        except (KafkaUnavailable, StoreUnavailable, StoreSetupError) as exc:
            raise run_failed(exc) from exc
    code, status = poll_status(report)
    if demo and config is not None:
        typer.echo(demo_next_steps(config))
    typer.echo(status)
    raise typer.Exit(code)
