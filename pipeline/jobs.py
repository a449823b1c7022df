"""Drivers around ``build_pipeline``: where a run's records come from and when offsets move.

Kept apart from app.py so that the graph stays one readable function and the guarantees of
each mode are stated in one place each.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import grpc  # type: ignore[import-untyped]  # (Beam's own dependency; no stubs)
from apache_beam.pvalue import PBegin, PCollection
from kafka import KafkaConsumer

from newsmon.config import KafkaSettings
from newsmon.metrics import PIPELINE_RECORDS, PIPELINE_RUNS, apply_beam_counter, stage_counter
from newsmon.pipeline.app import RunContext, build_pipeline, pipeline_options, prism_job_server
from newsmon.pipeline.commit import CommitAcknowledged
from newsmon.pipeline.io_kafka import (
    EVERY_PARTITION,
    PartitionRange,
    RawRecord,
    ReadPartitionRangeFn,
    WorkerShare,
    commit_ranges,
    ensure_topics,
    open_consumer,
    ranges_of,
    snapshot_ranges,
)
from newsmon.pipeline.kafka_source import KafkaRecord, ReadKafkaStream
from newsmon.pipeline.metrics import beam_counters, observe_lag, observe_pipeline_result
from newsmon.pipeline.store import open_store

log = logging.getLogger(__name__)

#: Test hook: set to make a batch run die after the writes and before the offset commit,
#: the window the exactly-once-effect guarantee has to survive.
CRASH_BEFORE_COMMIT_ENV = "NEWSMON_TEST_CRASH_BEFORE_COMMIT"


class InjectedCrash(RuntimeError):
    pass


@dataclass(frozen=True)
class BatchSummary:
    ranges: tuple[PartitionRange, ...]

    @property
    def records(self) -> int:
        return sum(r.size for r in self.ranges)


def run_kafka_batch(
    ctx: RunContext, *, runner: str = "FnApiRunner", extra_options: Sequence[str] = (),
    share: WorkerShare = EVERY_PARTITION,
) -> BatchSummary:
    """Process everything the consumer group has not processed in the partitions of
    ``share`` (all by default), then commit those partitions' offsets, then return.

    Offsets are committed only after the pipeline finished, i.e. after the store acknowledged
    every write; a crash in between makes the next run repeat the same, idempotent writes.
    M processes with the shares 0/M .. M-1/M read each item once between them.
    """
    kafka = ctx.settings.kafka
    ranges = snapshot_ranges(kafka, kafka.raw_topic, kafka.group_id, share)
    observe_lag(kafka.group_id, ranges)
    summary = BatchSummary(tuple(ranges))
    if summary.records == 0:
        log.info("nothing new in %s for group %s (worker %s)", kafka.raw_topic,
                 kafka.group_id, share)
        return summary
    log.info("batch run over %d records in %d partitions (worker %s)", summary.records,
             len(ranges), share)
    open_store(ctx.settings.search, ctx.settings.state_dir).setup()
    started = time.monotonic()
    with beam.Pipeline(options=pipeline_options(runner, extra_options)) as p:
        records = (
            p
            | "ListPartitionRanges" >> beam.Create([r for r in ranges if r.size])
            | "ReadRawItems" >> beam.ParDo(ReadPartitionRangeFn(kafka))
        )
        build_pipeline(records, ctx)
    observe_pipeline_result("kafka", summary.records, p.result,
                                    time.monotonic() - started)
    if os.environ.get(CRASH_BEFORE_COMMIT_ENV):
        raise InjectedCrash("injected crash between the writes and the offset commit")
    commit_ranges(kafka, kafka.group_id, ranges)
    return summary


def run_records(
    records: Sequence[RawRecord],
    ctx: RunContext,
    *,
    runner: str = "FnApiRunner",
    extra_options: Sequence[str] = (),
) -> int:
    """Run records already in memory (dead-letter replay) through the same stages."""
    if not records:
        return 0
    open_store(ctx.settings.search, ctx.settings.state_dir).setup()
    started = time.monotonic()
    with beam.Pipeline(options=pipeline_options(runner, extra_options)) as p:
        build_pipeline(p | "ReadRawItems" >> beam.Create(list(records)), ctx)
    observe_pipeline_result("replay", len(records), p.result, time.monotonic() - started)
    return len(records)


class ReadArchive(beam.PTransform[PBegin, PCollection[RawRecord]]):
    """The lines of a connector archive (one RawItem JSON per line) as records, read by Beam's
    splittable text source: a runner reads the file in ranges, in parallel where it can, and
    never holds the whole archive (the old ``list`` into ``beam.Create`` did, and pickled it).

    Lines are handed over undecoded (bytes), so a corrupt line takes the same dead-letter path
    as a corrupt Kafka message would.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def expand(self, pbegin: PBegin) -> PCollection[RawRecord]:
        name = self.path.name
        lines: PCollection[bytes] = pbegin | "ReadLines" >> beam.io.ReadFromText(
            str(self.path), coder=beam.coders.BytesCoder())
        records: PCollection[RawRecord] = lines | "Records" >> beam.FlatMap(
            lambda line: [RawRecord("archive", line.strip(), name)] if line.strip() else [])
        return records


def count_archive(path: Path) -> int:
    """How many records (non-blank lines) an archive holds, read as a stream: the progress
    bar's total and the run's count, without keeping a line."""
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


class ShowProgressFn(beam.DoFn):
    """Passes records through and draws a progress bar (on the local runner, in-process)."""

    def __init__(self, total: int, label: str) -> None:
        super().__init__()
        self.total = total
        self.label = label
        self.bar: object = None

    def setup(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, desc=self.label, unit="item", mininterval=0.5)

    def process(self, record: RawRecord) -> Iterator[RawRecord]:
        self.bar.update(1)  # type: ignore[attr-defined]
        yield record

    def teardown(self) -> None:
        if self.bar is not None:
            self.bar.close()  # type: ignore[attr-defined]


def run_backfill(
    path: Path,
    ctx: RunContext,
    *,
    runner: str = "FnApiRunner",
    extra_options: Sequence[str] = (),
    progress: bool = True,
) -> int:
    """Reprocess an archive with the current rules, through the same stages as a live run.

    Ids derive from content, so documents and alerts come out as a live run made them; an
    alert that a live run already delivered is not delivered again.
    """
    records = count_archive(path)
    if not records:
        return 0
    open_store(ctx.settings.search, ctx.settings.state_dir).setup()
    started = time.monotonic()
    with beam.Pipeline(options=pipeline_options(runner, extra_options)) as p:
        stream = p | "ReadArchive" >> ReadArchive(path)
        if progress:
            stream = stream | "ShowProgress" >> beam.ParDo(ShowProgressFn(records, "backfill"))
        build_pipeline(stream, ctx)
    observe_pipeline_result("archive", records, p.result, time.monotonic() - started)
    return records


def run_kafka_stream(
    ctx: RunContext,
    stop: threading.Event,
    *,
    interval_s: float = 0.5,
    runner: str = "PrismRunner",
    extra_options: Sequence[str] = (),
    discover_every_s: float = 30.0,
    share: WorkerShare = EVERY_PARTITION,
) -> int:
    """Run ONE unbounded pipeline over the raw topic until ``stop`` is set (then cancel it).

    Records are read by the splittable Kafka source (kafka_source.py), flow through the same
    stages as a batch run, and the commit stage (commit.py) commits each partition's offsets
    up to the contiguous prefix the store acknowledged, every ``interval_s`` at most. A crash
    anywhere loses only uncommitted progress: the next run reads it again and the
    content-derived ids make the repeated writes no-ops. Beam's counters reach Prometheus
    every few seconds while it runs; returns the records read as they counted them. Partitions
    added to the topic are read from the next discovery, every ``discover_every_s``. Only
    the partitions of ``share`` are read and committed (M streams with the shares 0/M ..
    M-1/M read each record once between them).
    """
    ensure_topics(ctx.settings.kafka)
    open_store(ctx.settings.search, ctx.settings.state_dir).setup()
    if runner == "PrismRunner" and not any(a.startswith("--job_endpoint")
                                           for a in extra_options):
        with prism_job_server() as endpoint:
            return _run_stream(ctx, stop, interval_s, runner,
                               [f"--job_endpoint={endpoint}", *extra_options], discover_every_s,
                               share)
    return _run_stream(ctx, stop, interval_s, runner, extra_options, discover_every_s, share)


def _run_stream(ctx: RunContext, stop: threading.Event, interval_s: float, runner: str,
                extra_options: Sequence[str], discover_every_s: float,
                share: WorkerShare) -> int:
    kafka = ctx.settings.kafka
    p = beam.Pipeline(options=pipeline_options(runner, ["--streaming", *extra_options]))
    read = p | "ReadKafka" >> ReadKafkaStream(kafka, discover_every_s=discover_every_s,
                                              share=share)
    records = read | "Records" >> beam.Map(_record_of)
    out = build_pipeline(records, ctx)
    _ = (read, out["acknowledged"]) | "CommitAcknowledged" >> CommitAcknowledged(
        kafka, every_s=interval_s)
    result = p.run()
    log.info("stream: pipeline running on %s; stop with SIGTERM", runner)
    finished = threading.Event()

    def wait() -> None:
        try:
            result.wait_until_finish()
        except Exception as exc:
            if stop.is_set() and runner_gone(exc):
                log.info("stream: the runner's connection closed as it stopped")
            else:
                log.exception("stream pipeline failed")
        finally:
            finished.set()

    PIPELINE_RUNS.labels("kafka-stream").inc()
    seen: dict[str, int] = {}
    next_export = time.monotonic() + EXPORT_EVERY_S
    with quiet_runner_shutdown(stop), StreamLag(ctx.settings.kafka, share) as lag:
        threading.Thread(target=wait, name="stream-wait", daemon=True).start()
        while not stop.is_set() and not finished.is_set():
            stop.wait(0.5)
            if time.monotonic() >= next_export:
                export_stream_counters(result, seen)
                lag.export()
                next_export = time.monotonic() + EXPORT_EVERY_S
        if not finished.is_set():
            export_stream_counters(result, seen)
            try:
                result.cancel()
            except Exception as exc:
                if not (stop.is_set() and runner_gone(exc)):
                    raise
                log.info("stream: the runner was already gone when asked to cancel")
            finished.wait(30)
    if not stop.is_set():
        raise RuntimeError(f"stream pipeline ended by itself ({result.state})")
    return seen.get(_READ, 0)


def runner_gone(exc: BaseException) -> bool:
    """Is ``exc`` a broken gRPC connection to the runner (UNAVAILABLE, CANCELLED)? What Beam's
    threads raise when the runner stops first: a Ctrl-C or a SIGTERM to the process group
    reaches Prism as well as newsmon."""
    code = getattr(exc, "code", None)
    return (isinstance(exc, grpc.RpcError) and callable(code)
            and code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED))


#: Beam loggers that report, at ERROR, a connection to the runner that broke.
_RUNNER_CONNECTION_LOGGERS = ("apache_beam.runners.worker.data_plane",
                              "apache_beam.runners.worker.sdk_worker")


def _mute_runner_gone(stop: threading.Event, *, records: bool = True) -> Callable[[], None]:
    """Once ``stop`` is set, a broken connection to the runner (:func:`runner_gone`) raised in
    one of Beam's threads is logged at DEBUG instead of printing a traceback, and (with
    ``records``) Beam's worker's ERROR record of it is dropped. Anything else, and anything
    before the stop, passes as it would without this. Returns what undoes it."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if stop.is_set() and args.exc_value is not None and runner_gone(args.exc_value):
            log.debug("thread %s: runner gone: %s",
                      args.thread.name if args.thread else "?", args.exc_value)
            return
        previous(args)

    def keep(record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (stop.is_set() and exc is not None and runner_gone(exc))

    threading.excepthook = hook
    loggers = [logging.getLogger(name) for name in _RUNNER_CONNECTION_LOGGERS] if records else []
    for logger in loggers:
        logger.addFilter(keep)

    def undo() -> None:
        threading.excepthook = previous
        for logger in loggers:
            logger.removeFilter(keep)

    return undo


@contextmanager
def quiet_runner_shutdown(stop: threading.Event) -> Iterator[None]:
    """For the block: once ``stop`` is set (the run was asked to stop), the runner going down
    with us is the stop we asked for, not an error (:func:`_mute_runner_gone`)."""
    undo = _mute_runner_gone(stop)
    try:
        yield
    finally:
        undo()


_RUNNER_MAY_GO = threading.Event()


def runner_may_go_from_now_on() -> None:
    """For a process that runs bounded pipelines (batch, backfill, replay) and then exits:
    from now on, a lost connection to the runner raised in one of Beam's threads is logged at
    DEBUG instead of printing a traceback. A portable runner stops its job service as a run
    finishes and the loopback worker's threads learn it a moment later, sometimes after the
    run returned; and a run whose runner really died fails in the main thread anyway
    (``wait_until_finish`` raises), so those tracebacks only ever add noise. Once per process
    (the CLI calls it). Only the threads' tracebacks: Beam's loggers are left alone, so a test
    process that ran the CLI in-process still sees them as quiet_runner_shutdown defines."""
    if not _RUNNER_MAY_GO.is_set():
        _RUNNER_MAY_GO.set()
        _mute_runner_gone(_RUNNER_MAY_GO, records=False)


def _record_of(read: KafkaRecord) -> RawRecord:
    return read.record


#: Seconds between two exports of a running stream's Beam counters to Prometheus.
EXPORT_EVERY_S = 5.0
#: The counter of records entering the first stage: the records the stream read.
_READ = stage_counter("decode", "in")


class StreamLag:
    """Exports the group's lag per partition (end offset minus committed offset) as the
    stream's commit stage leaves it: what an operator alerts on when the stream falls behind
    or stops. One consumer serves the whole run (opened at the first export, closed by
    :meth:`close`): a consumer per export would cost a connection and its metadata fetch
    every few seconds. Only the partitions of ``share`` are exported: a worker (``--worker
    i/M``) reports the lag of what it reads, so the M workers' series add up to the group's
    lag instead of each reporting every partition."""

    def __init__(self, kafka: KafkaSettings, share: WorkerShare = EVERY_PARTITION) -> None:
        self.kafka = kafka
        self.share = share
        self._consumer: KafkaConsumer | None = None

    def export(self) -> None:
        """Read the lag and set the gauges; a failure is logged and the next call tries
        again (opening the consumer then if it could not be opened)."""
        try:
            if self._consumer is None:
                self._consumer = open_consumer(self.kafka, self.kafka.group_id)
            observe_lag(self.kafka.group_id,
                        ranges_of(self._consumer, self.kafka, self.kafka.raw_topic,
                                  self.share))
        except Exception as exc:  # noqa: BLE001 - a metrics hiccup must not stop the stream
            log.warning("stream: lag not read: %s", exc)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def __enter__(self) -> StreamLag:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def export_stream_counters(result: Any, seen: dict[str, int]) -> None:
    """Add to Prometheus what the running pipeline counted since the last call (``seen``
    holds the totals already added, and is updated)."""
    # A portable runner's result caches its first metrics answer; a stream asks again.
    if hasattr(result, "_metrics"):
        result._metrics = None
    try:
        totals = beam_counters(result)
    except Exception as exc:  # noqa: BLE001 - a metrics hiccup must not stop the stream
        # A gRPC error prints on several lines; that the runner is gone is all it says.
        log.warning("stream: counters not read: %s",
                    "the runner is gone (UNAVAILABLE)" if runner_gone(exc) else exc)
        return
    for name, value in totals.items():
        delta = value - seen.get(name, 0)
        if delta > 0:
            apply_beam_counter(name, delta)
            if name == _READ:
                PIPELINE_RECORDS.labels("kafka-stream").inc(delta)
            seen[name] = value
