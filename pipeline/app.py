"""The whole pipeline in one place: ``build_pipeline`` reads top to bottom as the data flows.

    raw records
      -> ParseArticles   (DecodeRawItems -> NormalizeArticles -> ClassifyTopics)
      -> StoreArticles   (BatchArticles -> GroupStories -> WriteDocuments)
      -> RaiseAlerts     (EvaluateAlerts -> NotifyChannels -> CountNotified -> FinishRun:
                          surge rules, deliveries still owed from earlier runs)
    every stage's bad items -> ParkDeadLetters (search index, and the Kafka dead-letter topic)

Per-item work comes before anything that waits for a group, so in streaming mode results
appear as items arrive. Stages that talk to the store take batches (one bulk request, one
look-up per batch). Infrastructure errors (store or broker down) raise and fail the run, so
offsets are not committed and a re-run repeats the work; bad input becomes a dead letter.
The DoFns are in stages/; this module only wires them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import PCollection

from newsmon.pipeline.io_kafka import RawRecord
from newsmon.pipeline.stages.alerts import EvaluateAlertsFn, FinishRunFn, NotifyChannelsFn
from newsmon.pipeline.stages.base import DEAD, RunContext
from newsmon.pipeline.stages.dead_letters import WriteDeadLettersFn
from newsmon.pipeline.stages.items import ClassifyTopicsFn, DecodeRawItemsFn, NormalizeArticlesFn
from newsmon.pipeline.stages.store import GroupStoriesFn, WriteDocumentsFn

__all__ = ["RunContext", "build_pipeline", "pipeline_options"]

#: A composite's named outputs.
Outputs = dict[str, PCollection[Any]]


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
        normalized = decoded.items | "NormalizeArticles" >> beam.ParDo(
            NormalizeArticlesFn()).with_outputs(DEAD, main="articles")
        classified = normalized.articles | "ClassifyTopics" >> beam.ParDo(
            ClassifyTopicsFn(self.topics_path)).with_outputs(DEAD, main="articles")
        dead = ((decoded[DEAD], normalized[DEAD], classified[DEAD])
                | "CollectDeadLetters" >> beam.Flatten())
        return {"articles": classified.articles, "dead": dead}


class StoreArticles(beam.PTransform[PCollection[Any], Outputs]):
    """Articles -> batches of placed articles, written; documents the store rejects -> dead.

        articles -> BatchArticles -> GroupStories -> WriteDocuments -> batches
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
            | "GroupStories" >> beam.ParDo(GroupStoriesFn(self.ctx))
        )
        written = placed | "WriteDocuments" >> beam.ParDo(
            WriteDocumentsFn(self.ctx)).with_outputs(DEAD, main="batches")
        return {"batches": written.batches, "dead": written[DEAD]}


class RaiseAlerts(beam.PTransform[PCollection[Any], Outputs]):
    """Written batches -> alerts raised or merged, delivered; then the end-of-run sweep.

        batches -> EvaluateAlerts -> alerts -> NotifyChannels -> notified
                -> OnePerAlert -> CountNotified -> FinishRun -> finished
    """

    def __init__(self, ctx: RunContext) -> None:
        super().__init__()
        self.ctx = ctx

    def expand(self, batches: PCollection[Any]) -> Outputs:
        alerts = batches | "EvaluateAlerts" >> beam.ParDo(EvaluateAlertsFn(self.ctx))
        notified = alerts | "NotifyChannels" >> beam.ParDo(NotifyChannelsFn(self.ctx))
        finished = (
            notified
            | "OnePerAlert" >> beam.Map(lambda _: 1)
            # A global combine waits for every delivery, and yields 0 for a run without any.
            | "CountNotified" >> beam.CombineGlobally(sum)
            | "FinishRun" >> beam.ParDo(FinishRunFn(self.ctx))
        )
        return {"alerts": alerts, "notified": notified, "finished": finished}


class ParkDeadLetters(beam.PTransform[tuple[PCollection[Any], ...], PCollection[int]]):
    """Every stage's dead letters -> written, in batches (never dropped: see the DoFn).

        (dead, dead, ...) -> Flatten -> BatchDeadLetters -> WriteDeadLetters -> counts
    """

    def __init__(self, ctx: RunContext) -> None:
        super().__init__()
        self.ctx = ctx

    def expand(self, dead: tuple[PCollection[Any], ...]) -> PCollection[int]:
        batch = self.ctx.settings.search.bulk_batch_size
        written: PCollection[int] = (
            dead
            | "FlattenDeadLetters" >> beam.Flatten()
            | "BatchDeadLetters" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch)
            | "WriteDeadLetters" >> beam.ParDo(WriteDeadLettersFn(self.ctx))
        )
        return written


def build_pipeline(records: PCollection[RawRecord], ctx: RunContext) -> Outputs:
    """Wire every stage onto a PCollection of :class:`RawRecord`; returns the outputs."""
    parsed = records | "ParseArticles" >> ParseArticles(ctx.settings.topics)
    stored = parsed["articles"] | "StoreArticles" >> StoreArticles(ctx)
    raised = stored["batches"] | "RaiseAlerts" >> RaiseAlerts(ctx)
    dead = (parsed["dead"], stored["dead"]) | "ParkDeadLetters" >> ParkDeadLetters(ctx)
    return {"written": stored["batches"], "alerts": raised["alerts"],
            "notified": raised["notified"], "finished": raised["finished"], "dead": dead}


def pipeline_options(runner: str = "FnApiRunner", extra: Sequence[str] = ()) -> PipelineOptions:
    # The runner is always explicit: Beam's default would try to download the Prism runner.
    return PipelineOptions([f"--runner={runner}", *extra])
