"""Drivers around ``build_pipeline``: where a run's records come from and when offsets move.

Kept apart from app.py so that the graph stays one readable function and the guarantees of
each mode are stated in one place each.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam

from .app import RunContext, build_pipeline, pipeline_options
from .io_kafka import (
    PartitionRange,
    RawRecord,
    ReadPartitionRangeFn,
    commit_ranges,
    snapshot_ranges,
)
from .io_search import open_store
from .models import RawItem

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
    ctx: RunContext, *, runner: str = "FnApiRunner", extra_options: Sequence[str] = ()
) -> BatchSummary:
    """Process everything the consumer group has not processed, then commit, then return.

    Offsets are committed only after the pipeline finished, i.e. after the store acknowledged
    every write; a crash in between makes the next run repeat the same, idempotent writes.
    """
    kafka = ctx.settings.kafka
    ranges = snapshot_ranges(kafka, kafka.raw_topic, kafka.group_id)
    summary = BatchSummary(tuple(ranges))
    if summary.records == 0:
        log.info("nothing new in %s for group %s", kafka.raw_topic, kafka.group_id)
        return summary
    log.info("batch run over %d records in %d partitions", summary.records, len(ranges))
    open_store(ctx.settings.search, ctx.settings.state_dir).setup()
    with beam.Pipeline(options=pipeline_options(runner, extra_options)) as p:
        records = (
            p
            | "ListPartitionRanges" >> beam.Create([r for r in ranges if r.size])
            | "ReadRawItems" >> beam.ParDo(ReadPartitionRangeFn(kafka))
        )
        build_pipeline(records, ctx)
    if os.environ.get(CRASH_BEFORE_COMMIT_ENV):
        raise InjectedCrash("injected crash between the writes and the offset commit")
    commit_ranges(kafka, kafka.group_id, ranges)
    return summary


def run_items(
    items: Sequence[RawItem],
    ctx: RunContext,
    *,
    runner: str = "FnApiRunner",
    extra_options: Sequence[str] = (),
) -> int:
    """Run items handed over in memory (the embedded default) through the same stages."""
    if not items:
        return 0
    open_store(ctx.settings.search, ctx.settings.state_dir).setup()
    records = [RawRecord(i.source.id, i.to_json(), f"memory/{i.item_id}") for i in items]
    with beam.Pipeline(options=pipeline_options(runner, extra_options)) as p:
        build_pipeline(p | "ReadRawItems" >> beam.Create(records), ctx)
    return len(records)
