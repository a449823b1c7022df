"""The pipeline's observers: what a finished run counted (Beam counters, read back by the
driver) and the Kafka lag of each batch or stream round, added to the kernel's metrics
(:mod:`newsmon.metrics`, which defines every name and serves or writes them)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from newsmon.metrics import (
    KAFKA_LAG,
    NAMESPACE,
    PIPELINE_RECORDS,
    PIPELINE_RUNS,
    PIPELINE_SECONDS,
    apply_beam_counter,
)
from newsmon.pipeline.io_kafka import PartitionRange

log = logging.getLogger(__name__)


def beam_counters(result: Any) -> dict[str, int]:
    """The ``newsmon`` counters of a finished Beam run, summed over steps.

    Committed values where the runner has them, else attempted ones (``MetricResult.result``).
    """
    from apache_beam.metrics.metric import MetricsFilter

    totals: dict[str, int] = {}
    try:
        found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    except NotImplementedError:  # a runner without metrics support: nothing to add
        log.warning("runner %s reports no metrics", type(result).__name__)
        return totals
    for counter in found["counters"]:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(
            counter.result or 0
        )
    return totals


def observe_pipeline_result(input_name: str, records: int, result: Any, seconds: float) -> None:
    """Add one finished pipeline run to the metrics (driver side)."""
    PIPELINE_RUNS.labels(input_name).inc()
    PIPELINE_RECORDS.labels(input_name).inc(records)
    PIPELINE_SECONDS.labels(input_name).observe(seconds)
    for name, value in beam_counters(result).items():
        apply_beam_counter(name, value)


def observe_lag(group: str, ranges: Iterable[PartitionRange]) -> None:
    """The lag of each partition (what ``group`` has not processed) at this snapshot."""
    for r in ranges:
        KAFKA_LAG.labels(r.topic, str(r.partition), group).set(r.size)
