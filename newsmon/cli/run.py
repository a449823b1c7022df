"""``newsmon run [--demo]``: poll once and run the pipeline, in one process."""

from __future__ import annotations

from typing import Annotated

import typer

from newsmon.cli._common import ConfigOpt, app, complete, exclusive, poll_status, run_failed
from newsmon.config import shipped_config_dir


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
    """
    from newsmon.kafka import KafkaUnavailable
    from newsmon.ops.orchestrate import run_once
    from newsmon.pipeline.store import StoreSetupError, StoreUnavailable

    loaded = complete(shipped_config_dir() / "demo" / "newsmon.yaml" if demo else config)
    with exclusive(loaded.settings, "poll", "pipeline"):
        try:
            report = run_once(loaded, demo=demo, say=typer.echo)
        except (KafkaUnavailable, StoreUnavailable, StoreSetupError) as exc:
            raise run_failed(exc) from exc
    code, status = poll_status(report)
    typer.echo(status)
    raise typer.Exit(code)
