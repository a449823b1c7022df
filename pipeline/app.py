"""The whole pipeline in one place: ``build_pipeline`` reads top to bottom as the data flows.

    raw records
      -> ParseArticles   (DecodeRawItems -> NormalizeArticles -> ClassifyTopics)
      -> StoreArticles   (BatchArticles -> GroupStories -> WriteDocuments -> MergeStories)
      -> RaiseAlerts     (EvaluateAlerts -> NotifyChannels -> CountNotified -> FinishRun:
                          deliveries still owed from earlier runs;
                          JudgeSurges: sliding event-time windows per surge rule)
    every stage's bad items -> ParkDeadLetters (search index, and the Kafka dead-letter topic)
    articles written + letters parked -> Acknowledged (per record: stream mode's commit stage)

Per-item work comes before anything that waits for a group, so in streaming mode results
appear as items arrive. Stages that talk to the store take batches (one bulk request, one
look-up per batch). Infrastructure errors (store or broker down) raise and fail the run, so
offsets are not committed and a re-run repeats the work; bad input becomes a dead letter.
The DoFns are in stages/; this module only wires them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import PCollection
from apache_beam.transforms.trigger import (
    AccumulationMode,
    AfterCount,
    AfterProcessingTime,
    AfterWatermark,
    Repeatedly,
)
from apache_beam.transforms.window import GlobalWindows, SlidingWindows

from newsmon.models import Article
from newsmon.pipeline.alerts.config import SurgeRule
from newsmon.pipeline.alerts.surge import allowed_lateness_s, window_shape
from newsmon.pipeline.commit import WRITTEN_LETTERS, Acknowledged, WriteDeadLettersAckFn
from newsmon.pipeline.io_kafka import RawRecord
from newsmon.pipeline.stages.alerts import EvaluateAlertsFn, FinishRunFn, NotifyChannelsFn
from newsmon.pipeline.stages.base import DEAD, RunContext
from newsmon.pipeline.stages.items import ClassifyTopicsFn, DecodeRawItemsFn, NormalizeArticlesFn
from newsmon.pipeline.stages.merge import MergeStoriesFn
from newsmon.pipeline.stages.store import GroupStoriesFn, Placed, WriteDocumentsFn
from newsmon.pipeline.stages.surges import (
    CountPerIntervalFn,
    JudgeSurgeWindowFn,
    StampEventTimesFn,
)

__all__ = ["RunContext", "build_pipeline", "find_prism", "pipeline_options"]

#: Stream mode: seconds between end-of-run sweeps (deliveries still owed), and between the
#: early firings of a surge window (a surge is raised while its interval is still running).
SWEEP_EVERY_S = 5

#: The deadline of a portable job's state and message streams (Beam's --job_server_timeout):
#: a year, i.e. none a run reaches, since a stream runs until it is stopped.
JOB_STREAMS_TIMEOUT_S = 365 * 24 * 3600

#: A composite's named outputs.
Outputs = dict[str, PCollection[Any]]
#: The element of the batch PCollections after grouping, as a Beam type hint.
PlacedBatch = beam.typehints.List[Placed]


class ParseArticles(beam.PTransform[PCollection[RawRecord], Outputs]):
    """Raw records -> classified Articles; what cannot be parsed -> ``dead``.

        records -> DecodeRawItems -> NormalizeArticles -> ClassifyTopics -> articles
                        |                  |                    |
                        +------------------+--------------------+---> dead
    """

    def __init__(self, topics_path: Path) -> None:
        super().__init__()
        self.topics_path = topics_path

    def expand(self, records: PCollection[RawRecord]) -> Outputs:
        decoded = records | "DecodeRawItems" >> beam.ParDo(DecodeRawItemsFn()).with_outputs(
            DEAD, main="items")
        # Typed outputs are coded by ArticleCoder and PlacedCoder (EstimatedPickleCoder:
        # Beam's size sampling no longer pickles every article of every batch).
        normalized = decoded.items | "NormalizeArticles" >> beam.ParDo(
            NormalizeArticlesFn()).with_output_types(Article).with_outputs(DEAD, main="articles")
        classified = normalized.articles | "ClassifyTopics" >> beam.ParDo(
            ClassifyTopicsFn(self.topics_path)).with_output_types(Article).with_outputs(
                DEAD, main="articles")
        dead = ((decoded[DEAD], normalized[DEAD], classified[DEAD])
                | "CollectDeadLetters" >> beam.Flatten())
        return {"articles": classified.articles, "dead": dead}


class StoreArticles(beam.PTransform[PCollection[Any], Outputs]):
    """Articles -> batches of placed articles, written, in their stories once the stories
    other workers split are merged; documents the store rejects -> dead.

        articles -> BatchArticles -> GroupStories -> WriteDocuments -> MergeStories -> batches
                                                           +---------> dead
    """

    def __init__(self, ctx: RunContext) -> None:
        super().__init__()
        self.ctx = ctx

    def expand(self, articles: PCollection[Any]) -> Outputs:
        batch = self.ctx.settings.search.bulk_batch_size
        placed = (
            articles
            # Batches are flushed at the end of each bundle anyway, so a large minimum costs
            # no latency in streaming and saves round trips to the store in batch runs.
            | "BatchArticles" >> beam.BatchElements(min_batch_size=min(100, batch),
                                                    max_batch_size=batch)
            | "GroupStories" >> beam.ParDo(GroupStoriesFn(self.ctx)).with_output_types(
                PlacedBatch)
        )
        written = placed | "WriteDocuments" >> beam.ParDo(
            WriteDocumentsFn(self.ctx)).with_output_types(PlacedBatch).with_outputs(
                DEAD, main="batches")
        merged = written.batches | "MergeStories" >> beam.ParDo(
            MergeStoriesFn(self.ctx)).with_output_types(PlacedBatch)
        return {"batches": merged, "dead": written[DEAD]}


class JudgeSurges(beam.PTransform[PCollection[Any], PCollection[str]]):
    """Written batches -> surge alert ids: each surge rule's articles counted in sliding
    event-time windows (one interval and its baseline; a new window every interval), the last
    interval of each window judged as it fires.

        batches -> StampEventTimes -> WindowIntoSlides -> CountPerInterval -> JudgeSurgeWindow

    Keyed by rule (a topic and its filters); rules of one window shape share a branch. A
    window fires at the watermark (a bounded input: at the end), early every SWEEP_EVERY_S
    while a stream runs, and again for every late article within the allowed lateness;
    panes accumulate, so each firing judges everything the window has seen.
    """

    def __init__(self, ctx: RunContext) -> None:
        super().__init__()
        self.ctx = ctx

    def expand(self, batches: PCollection[Any]) -> PCollection[str]:
        shapes: dict[tuple[int, int], list[SurgeRule]] = {}
        for rule in self.ctx.alerts.surges:
            shapes.setdefault(window_shape(rule), []).append(rule)
        # A stream also fires early, so a surge is raised while its interval still runs (on a
        # bounded input there is nothing to fire early for, and FnApiRunner has no clock).
        early = None if batches.is_bounded else AfterProcessingTime(SWEEP_EVERY_S)
        judged = []
        for (size, period), rules in sorted(shapes.items()):
            shape = f"[{size}s every {period}s]"
            judged.append(
                batches
                | f"StampEventTimes{shape}" >> beam.ParDo(StampEventTimesFn(rules))
                | f"WindowIntoSlides{shape}" >> beam.WindowInto(
                    SlidingWindows(size, period),
                    trigger=AfterWatermark(early=early, late=AfterCount(1)),
                    accumulation_mode=AccumulationMode.ACCUMULATING,
                    allowed_lateness=allowed_lateness_s(self.ctx.alerts))
                | f"CountPerInterval{shape}" >> beam.CombinePerKey(CountPerIntervalFn())
                | f"JudgeSurgeWindow{shape}" >> beam.ParDo(JudgeSurgeWindowFn(self.ctx)))
        # No rules: an empty output off the same input (a source of its own would be a bounded
        # one in a stream's graph).
        surges: PCollection[str] = (
            tuple(judged) | "CollectSurges" >> beam.Flatten() if judged
            else batches | "NoSurgeRules" >> beam.FlatMap(lambda _: ()))
        return surges


class RaiseAlerts(beam.PTransform[PCollection[Any], Outputs]):
    """Written batches -> alerts raised or merged, delivered; surges judged in windows; then
    the end-of-run sweep (deliveries still owed).

        batches -> EvaluateAlerts -> alerts -> NotifyChannels -> notified
                -> OnePerAlert -> CountNotified -> FinishRun -> finished
                -> JudgeSurges -> surges
    """

    def __init__(self, ctx: RunContext) -> None:
        super().__init__()
        self.ctx = ctx

    def expand(self, batches: PCollection[Any]) -> Outputs:
        alerts = batches | "EvaluateAlerts" >> beam.ParDo(EvaluateAlertsFn(self.ctx))
        notified = alerts | "NotifyChannels" >> beam.ParDo(NotifyChannelsFn(self.ctx))
        ones = notified | "OnePerAlert" >> beam.Map(lambda _: 1)
        if notified.is_bounded:
            # A global combine waits for every delivery, and yields 0 for a run without any.
            counted = ones | "CountNotified" >> beam.CombineGlobally(sum)
        else:
            # A stream has no end to wait for: the sweep follows the deliveries of every few
            # seconds instead (and does not run while nothing is delivered).
            counted = (
                ones
                | "SweepEvery" >> beam.WindowInto(
                    GlobalWindows(), trigger=Repeatedly(AfterProcessingTime(SWEEP_EVERY_S)),
                    accumulation_mode=AccumulationMode.DISCARDING)
                | "CountNotified" >> beam.CombineGlobally(sum).without_defaults()
            )
        finished = counted | "FinishRun" >> beam.ParDo(FinishRunFn(self.ctx))
        surges = batches | "JudgeSurges" >> JudgeSurges(self.ctx)
        return {"alerts": alerts, "notified": notified, "finished": finished,
                "surges": surges}


class ParkDeadLetters(beam.PTransform[tuple[PCollection[Any], ...], Outputs]):
    """Every stage's dead letters -> written, in batches (never dropped: see the DoFn).

        (dead, dead, ...) -> Flatten -> BatchDeadLetters -> WriteDeadLetters -> counts
                                                                    +-------> letters written
    """

    def __init__(self, ctx: RunContext) -> None:
        super().__init__()
        self.ctx = ctx

    def expand(self, dead: tuple[PCollection[Any], ...]) -> Outputs:
        batch = self.ctx.settings.search.bulk_batch_size
        written = (
            dead
            | "FlattenDeadLetters" >> beam.Flatten()
            | "BatchDeadLetters" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch)
            | "WriteDeadLetters" >> beam.ParDo(WriteDeadLettersAckFn(self.ctx)).with_outputs(
                WRITTEN_LETTERS, main="counts")
        )
        return {"counts": written.counts, "letters": written[WRITTEN_LETTERS]}


def build_pipeline(records: PCollection[RawRecord], ctx: RunContext) -> Outputs:
    """Wire every stage onto a PCollection of :class:`RawRecord`; returns the outputs."""
    parsed = records | "ParseArticles" >> ParseArticles(ctx.settings.topics)
    stored = parsed["articles"] | "StoreArticles" >> StoreArticles(ctx)
    raised = stored["batches"] | "RaiseAlerts" >> RaiseAlerts(ctx)
    parked = (parsed["dead"], stored["dead"]) | "ParkDeadLetters" >> ParkDeadLetters(ctx)
    # What the store acknowledged, per input record: stream mode commits offsets on it.
    acked = stored["batches"], parked["letters"]
    return {"written": stored["batches"], "alerts": raised["alerts"],
            "notified": raised["notified"], "finished": raised["finished"],
            "surges": raised["surges"],
            "dead": parked["counts"], "acknowledged": acked | "Acknowledged" >> Acknowledged()}


#: Where newsmon looks for Beam's Prism runner when NEWSMON_PRISM is not set: `make prism`
#: builds it into the virtualenv's bin directory, beside this interpreter.
PRISM_ENV = "NEWSMON_PRISM"


class PrismNotFound(RuntimeError):
    pass


def find_prism() -> Path:
    """The Prism binary: ``$NEWSMON_PRISM``, else the one `make prism` built into the venv,
    else ``prism`` on PATH. Raises when there is none: Beam would try to download it, and
    a run (or a CI job) meant for Prism must fail rather than fall back to another runner."""
    candidates = [os.environ.get(PRISM_ENV, ""), str(Path(sys.executable).parent / "prism"),
                  shutil.which("prism") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise PrismNotFound(f"Beam's Prism runner was not found (${PRISM_ENV}, "
                        f"{Path(sys.executable).parent / 'prism'}, PATH): run `make prism`")


@contextmanager
def prism_job_server(start_timeout_s: float = 60) -> Iterator[str]:
    """A Prism job service of our own for the duration of the block; yields its endpoint.

    Beam's PrismRunner starts one itself, but only from the main thread (it installs a SIGINT
    handler) and ties its life to the interpreter's exit; a stream run owns its runner
    instead, in its own process group's reach, so ``kill -9`` of the group takes it too.
    Raises when it does not start: a run meant for Prism never falls back to another runner.
    """
    binary = find_prism()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(  # noqa: S603 - the Prism binary find_prism chose
        [str(binary), "--job_port", str(port), "--serve_http=false", "--log_level=warn"],
        stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise PrismNotFound(f"Prism ({binary}) exited with {proc.returncode} at start")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise PrismNotFound(f"Prism ({binary}) did not listen on {port} within "
                                        f"{start_timeout_s:.0f} s") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pipeline_options(runner: str = "FnApiRunner", extra: Sequence[str] = ()) -> PipelineOptions:
    """Beam options for ``runner``; PrismRunner gets the local binary and loopback workers
    unless ``extra`` says otherwise."""
    # The runner is always explicit: Beam's default would try to download the Prism runner.
    args = [f"--runner={runner}", *extra]
    if not any(a.startswith("--job_server_timeout") for a in extra):
        # Beam opens a portable job's state and message streams with this as their gRPC
        # deadline (300 s by default): past it the driver takes a job still running for one
        # that ended, and a stream on Prism stopped after five minutes. A job runs until done.
        args.append(f"--job_server_timeout={JOB_STREAMS_TIMEOUT_S}")
    if runner == "PrismRunner":
        if not any(a.startswith(("--prism_location", "--job_endpoint")) for a in extra):
            args.append(f"--prism_location={find_prism()}")
        if not any(a.startswith("--environment_type") for a in extra):
            args.append("--environment_type=LOOPBACK")
    return PipelineOptions(args)
