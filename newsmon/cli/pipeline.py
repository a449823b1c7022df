"""``newsmon pipeline run``: Kafka (or an archive) -> Beam -> search server."""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsmon.cli._common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    ConfigOpt,
    MetricsFileOpt,
    MetricsHostOpt,
    MetricsPortOpt,
    command_group,
    complete,
    exclusive,
    fail,
    run_failed,
    settings,
)

if TYPE_CHECKING:
    from newsmon.pipeline.io_kafka import WorkerShare

pipeline_app = command_group("pipeline", "Kafka -> Beam -> search server.")


class Mode(StrEnum):
    batch = "batch"
    stream = "stream"
    backfill = "backfill"


@pipeline_app.command("run")
def pipeline_run(
    config: ConfigOpt = None,
    mode: Annotated[
        Mode,
        typer.Option(
            help="batch: process what this consumer group has not processed in Kafka, commit "
            "the offsets after the search server acknowledged the writes, exit (for cron and "
            "CronJobs). stream: one unbounded pipeline that commits each partition's offsets "
            "as the search server acknowledges the writes, until SIGTERM. backfill: reprocess "
            "archived raw items (JSON Lines, see `poll --archive`) with the current rules.",
        ),
    ] = Mode.batch,
    source: Annotated[
        Path | None, typer.Option("--from", help="backfill: the JSONL archive to read.")
    ] = None,
    runner: Annotated[
        str | None,
        typer.Option(
            help="Beam runner: PrismRunner (Beam's portable runner, `make prism`; the default "
            "of stream mode, which is one unbounded pipeline), FnApiRunner (in-process, the "
            "default of batch and backfill) or FlinkRunner, SparkRunner, DataflowRunner; "
            "pass their options after `--`."
        ),
    ] = None,
    worker: Annotated[
        str | None,
        typer.Option(
            help="batch and stream: i/M, this process is worker i of M sharing the raw "
            "topic's partitions (those whose number mod M is i) and commits only theirs; "
            "start M of them, 0/M to M-1/M, with the same config. Each item is read by one "
            "of them.",
        ),
    ] = None,
    beam_args: Annotated[
        list[str] | None, typer.Argument(help="Extra Beam pipeline options, after `--`.")
    ] = None,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
    metrics_file: MetricsFileOpt = None,
) -> None:
    """Run the Beam pipeline: Kafka (or an archive) -> documents, alerts, dead letters."""
    from newsmon import metrics
    from newsmon.ops.orchestrate import run_context
    from newsmon.pipeline.store import StoreSetupError, StoreUnavailable

    loaded = complete(config, with_feeds=False)
    share = _worker_share(worker, mode)
    ctx = run_context(loaded, kafka_dead_letters=mode is not Mode.backfill)
    # Beam, imported once the config is known to be valid (its import logs noise).
    from newsmon.kafka import KafkaUnavailable
    from newsmon.pipeline.app import PrismNotFound
    from newsmon.pipeline.io_kafka import EVERY_PARTITION
    from newsmon.pipeline.jobs import (
        run_backfill,
        run_kafka_batch,
        run_kafka_stream,
        runner_may_go_from_now_on,
    )

    extra = beam_args or ()
    if mode is not Mode.stream:  # one bounded run, then the process ends
        runner_may_go_from_now_on()
    chosen = runner or ("PrismRunner" if mode is Mode.stream else "FnApiRunner")
    # Batch and stream runs own the consumer group's offsets: one at a time. A backfill
    # reads a file and commits nothing, so it may run beside them.
    # Workers of one M hold a lock each: they share the group, not partitions.
    jobs = () if mode is Mode.backfill else (
        "pipeline" if share is None else f"pipeline-worker-{share.index}-of-{share.count}",)
    with exclusive(loaded.settings, *jobs), metrics.exported(
            f"pipeline-{mode.value}", port=metrics_port, host=metrics_host,
            textfile=metrics_file):
        try:
            if mode is Mode.backfill:
                if source is None:
                    raise fail("--mode backfill needs --from PATH (a JSONL archive)",
                               EXIT_CONFIG)
                n = run_backfill(source, ctx, runner=chosen, extra_options=extra)
                typer.echo(f"backfilled {n} records from {source}")
            elif mode is Mode.stream:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                n = run_kafka_stream(ctx, stop, runner=chosen, extra_options=extra,
                                     share=share or EVERY_PARTITION)
                typer.echo(f"stream stopped after {n} records")
            else:
                summary = run_kafka_batch(ctx, runner=chosen, extra_options=extra,
                                          share=share or EVERY_PARTITION)
                worker_of = "" if share is None else (
                    f" (worker {share}: partitions {[r.partition for r in summary.ranges]})")
                typer.echo(f"processed {summary.records} records{worker_of}; "
                           "offsets committed")
        except (KafkaUnavailable, StoreUnavailable, StoreSetupError, PrismNotFound) as exc:
            raise run_failed(exc) from exc


def _worker_share(worker: str | None, mode: Mode) -> WorkerShare | None:
    """The ``--worker`` share, or exit 2 saying why not (a backfill takes none)."""
    if worker is None:
        return None
    if mode is Mode.backfill:
        raise fail("--worker is for --mode batch and stream (a backfill reads a file)",
                   EXIT_CONFIG)
    from newsmon.pipeline.io_kafka import WorkerShare

    try:
        return WorkerShare.parse(worker)
    except ValueError as exc:
        raise fail(f"--worker: {exc}", EXIT_CONFIG) from exc


@pipeline_app.command("topics")
def pipeline_topics(
    config: ConfigOpt = None,
    shard_topics: Annotated[bool, typer.Option(
        "--shard-topics/--no-shard-topics",
        help="also the topics of sharded pollers (`poll --shard-group`): the control topic "
             "with poller.shard_partitions partitions and the compacted <raw topic>.seen")] = True,
) -> None:
    """Create every topic the deployment uses, for the brokers there are: the raw-item and
    dead-letter topics (6 partitions) and the sharded pollers' control and seen topics
    (poller.shard_partitions each, the seen topic compacted); 3 replicas and
    min.insync.replicas 2 on three brokers or more, one copy on one broker. Say what each
    topic has. Existing topics are left as they are (a missing config is named); a shard
    topic with another partition count than poller.shard_partitions fails the command."""
    from newsmon.connectors.sharding import shard_topics as shard_specs
    from newsmon.kafka import KafkaUnavailable, TopicMismatch, ensure_topics
    from newsmon.pipeline.io_kafka import pipeline_topics as pipeline_specs

    loaded = settings(config)
    specs = pipeline_specs(loaded.kafka)
    if shard_topics:
        specs += shard_specs(loaded.kafka, loaded.poller.shard_partitions)
    try:
        lines = ensure_topics(loaded.kafka, specs)
    except (KafkaUnavailable, TopicMismatch) as exc:
        raise fail(f"pipeline topics: {exc}", EXIT_FAILED) from exc
    for line in lines:
        typer.echo(line)
