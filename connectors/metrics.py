"""The pollers' observer: the per-source counts of a finished pass, added to the kernel's
metrics (:mod:`newsmon.metrics`; the per-type counts are added as the pass goes)."""

from __future__ import annotations

from newsmon.connectors.results import PollReport
from newsmon.metrics import POLL_PASS_SECONDS, SOURCE_ITEMS, SOURCE_POLLS, SOURCE_PROBLEMS


def observe_poll_report(report: PollReport, mode: str) -> None:
    """Per-source counts of one pass (the per-type ones are counted as the pass goes)."""
    for r in report.results:
        SOURCE_POLLS.labels(r.source_id, r.status).inc()
        if r.new_items:
            SOURCE_ITEMS.labels(r.source_id, "new").inc(r.new_items)
        if r.updated_items:
            SOURCE_ITEMS.labels(r.source_id, "updated").inc(r.updated_items)
        if r.problems:
            SOURCE_PROBLEMS.labels(r.source_id).inc(r.problems)
    if report.results:
        POLL_PASS_SECONDS.labels(mode).observe(
            (report.finished_at - report.started_at).total_seconds()
        )
