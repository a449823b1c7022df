"""``newsmon poll`` and ``newsmon sources [enable ID]``: the connectors' commands."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from newsmon.cli import _common as common
from newsmon.cli._common import ConfigOpt, feeds, settings
from newsmon.config import Settings


@common.app.command()
def poll(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Poll every due source once and exit.")] = (
        False
    ),
    force: Annotated[bool, typer.Option(help="With --once: ignore intervals.")] = False,
    archive: Annotated[
        Path | None, typer.Option(help="Also append every published item to this JSONL file.")
    ] = None,
    metrics_port: common.MetricsPortOpt = None,
    metrics_host: common.MetricsHostOpt = "127.0.0.1",
    metrics_file: common.MetricsFileOpt = None,
    shard_group: Annotated[
        str | None, typer.Option(metavar="NAME", help="Share the sources with the other "
                                 "pollers of this group, each source polled by one of them "
                                 "(poller.shard_group; docs/scaling.md). Not with --once.")
    ] = None,
    shard_member: Annotated[
        str | None, typer.Option(metavar="NAME", help="This poller's name in its group, "
                                 "unique in it (poller.shard_member; default: the host name).")
    ] = None,
) -> None:
    """Poll feeds and Telegram channels and publish new items to Kafka."""
    from newsmon import metrics
    from newsmon.connectors.publisher import KafkaPublisher
    from newsmon.ops import orchestrate

    loaded = settings(config)
    chosen = {k: v for k, v in (("shard_group", shard_group), ("shard_member", shard_member))
              if v is not None}
    if chosen:
        try:
            poller_settings = loaded.poller.model_validate(
                loaded.poller.model_dump() | chosen)
        except ValueError as exc:
            raise common.fail(f"--shard-group/--shard-member: {exc}",
                              common.EXIT_CONFIG) from None
        loaded = loaded.model_copy(update={"poller": poller_settings})
    if loaded.poller.shard_group is not None:
        if once:
            raise common.fail("--once polls every due source: a poller sharing the sources "
                              "runs continuously (drop --once or the shard group)",
                              common.EXIT_CONFIG)
        _poll_shared(loaded, archive, metrics_port, metrics_host, metrics_file)
        return
    publisher = KafkaPublisher(loaded.kafka)
    with common.exclusive(loaded, "poll"), metrics.exported(
            "poll-once" if once else "poll", port=metrics_port, host=metrics_host,
            textfile=metrics_file):
        try:
            sources = feeds(loaded)
            poller = orchestrate.make_poller(loaded, sources, publisher, archive=archive,
                                             progress=once)
            if once:
                report = poller.poll_once(force=force)
                typer.echo(orchestrate.poll_summary(report))
                orchestrate.publish_health(loaded, sources)
                code, status = common.poll_status(report)
                typer.echo(status)
                raise typer.Exit(code)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            poller.run_forever(stop)
        finally:
            publisher.close()


def _poll_shared(loaded: Settings, archive: Path | None, metrics_port: int | None,
                 metrics_host: str, metrics_file: Path | None) -> None:
    """``poll --shard-group``: one member of a group of pollers, until SIGTERM."""
    import socket

    from kafka.errors import KafkaError

    from newsmon import metrics
    from newsmon.connectors.publisher import PublishError
    from newsmon.kafka import KafkaUnavailable
    from newsmon.ops import orchestrate

    member = loaded.poller.shard_member or socket.gethostname()
    job = f"poll.{loaded.poller.shard_group}.{member}"
    with common.exclusive(loaded, job), metrics.exported(
            "poll", port=metrics_port, host=metrics_host, textfile=metrics_file):
        try:
            with orchestrate.sharded_poller(loaded, feeds(loaded), archive=archive) as poller:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                poller.run_forever(stop)
        except PublishError as exc:
            raise common.fail(str(exc), common.EXIT_CONFIG) from None
        except (KafkaError, KafkaUnavailable) as exc:
            raise common.fail(f"the shard group cannot be joined: {type(exc).__name__}: "
                              f"{exc}", common.EXIT_FAILED) from None


sources_app = common.command_group(
    "sources",
    "Every configured source with its health; `enable ID` re-enables a disabled one. Exit "
    "status: 0 no enabled source failing, 3 some failing or disabled, 4 all of them, 2 "
    "invalid config.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@sources_app.callback()
def sources(
    ctx: typer.Context,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    publish: Annotated[
        bool, typer.Option("--publish", help="Also write it to the search store's "
                           "source-health index (for dashboards; schedule it next to a "
                           "continuously running poller).")
    ] = False,
) -> None:
    """Show every configured source with its health.

    Exit status: 0 no enabled source is failing (never polled is fine); 3 some enabled
    sources are failing or disabled; 4 every enabled source is; 2 invalid config.
    """
    if ctx.invoked_subcommand is not None:
        return
    from newsmon.cli import render
    from newsmon.connectors.health import source_health
    from newsmon.connectors.websub.schedule import feed_modes
    from newsmon.exits import sources_exit
    from newsmon.ops import orchestrate

    loaded = settings(config)
    configured = feeds(loaded)
    health = source_health(configured, orchestrate.state_paths(loaded))
    fed = feed_modes(configured, orchestrate.state_path(loaded), datetime.now(UTC))
    labels = {s.id: (s.kind.value if s.kind else None, s.owner or None)
              for s in configured.sources}
    typer.echo(render.health_json(health, fed, labels) if as_json else
               render.health_table(health, fed=fed, labels=labels))
    if publish:
        orchestrate.publish_health(loaded, configured)
    raise typer.Exit(sources_exit(h.state for h in health))


@sources_app.command("enable")
def sources_enable(
    source_id: Annotated[str, typer.Argument(metavar="ID", help="The source's id in feeds.yaml.")],
    config: ConfigOpt = None,
) -> None:
    """Re-enable a source disabled after repeated hard failures (fix its URL first): its
    failure counts are cleared and it is polled at the next pass."""
    from newsmon.connectors.health import merged_health
    from newsmon.connectors.records import Health
    from newsmon.connectors.state import StateStore
    from newsmon.ops import orchestrate

    loaded = settings(config)
    configured = feeds(loaded)
    try:
        source = configured.get(source_id)
    except KeyError:
        known = ", ".join(s.id for s in configured.sources) or "none"
        raise common.fail(f"no source {source_id!r} in {loaded.feeds} (sources: {known})",
                          common.EXIT_CONFIG) from None
    paths = [p for p in orchestrate.state_paths(loaded) if p.exists()]
    if not paths:
        typer.echo(f"{source.id} was never polled: nothing to enable")
        return
    # In every store that holds it disabled: with a shard group, the member that polled it
    # (or several, after its shard moved). No run lock: a running poller skips disabled
    # sources and reads their health anew on every pass, so it picks the change up by itself.
    enabled = 0
    for path in paths:
        with StateStore(path) as state:
            if state.health(source.id).disabled:
                state.enable(source.id)
                enabled += 1
    if not enabled:
        health = merged_health(paths).get(source.id) or Health(source_id=source.id)
        typer.echo(f"{source.id} is not disabled ({health.consecutive_failures} "
                   "consecutive failures): nothing changed")
        return
    note = "" if source.enabled else " (it is `enabled: false` in feeds.yaml: still not polled)"
    typer.echo(f"{source.id} enabled: polled at the next pass{note}")
