"""What a poll pass came to: one :class:`SourceResult` per source, in a :class:`PollReport`.

The report is what ``newsmon poll --once`` and ``newsmon run`` print and take their exit
status from, and what the pollers' metrics count (connectors/metrics.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

ResultStatus = Literal[
    "ok", "not-modified", "throttled", "error", "publish-failed", "disabled"
]
FAILED: frozenset[str] = frozenset({"error", "publish-failed", "disabled"})


class SourceResult(BaseModel):
    """What one source's poll came to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_id: str
    type: str
    status: ResultStatus
    new_items: int = 0
    updated_items: int = 0
    problems: int = 0
    http_status: int | None = None
    error_kind: str | None = None
    error: str | None = None
    next_due_at: datetime | None = None


class PollReport(BaseModel):
    """The results of one pass over the due sources."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    started_at: datetime
    finished_at: datetime
    results: tuple[SourceResult, ...] = ()
    #: Enabled sources skipped because they were not due yet.
    not_due: int = 0
    #: True when the pass was cut short by the stop event.
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """No source failed, none is disabled and nothing is left unpublished."""
        return not any(r.status in FAILED for r in self.results)

    @property
    def new_items(self) -> int:
        return sum(r.new_items for r in self.results)

    @property
    def updated_items(self) -> int:
        return sum(r.updated_items for r in self.results)

    def summary(self, max_lines: int = 15) -> str:
        """One screen: totals, then one line per failed source (the first ``max_lines``)."""
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        seconds = (self.finished_at - self.started_at).total_seconds()
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
        lines = [
            f"polled {len(self.results)} sources in {seconds:.1f}s ({parts});"
            f" {self.new_items} new, {self.updated_items} updated items;"
            f" {self.not_due} not due" + ("; stopped early" if self.stopped else "")
        ]
        failed = [r for r in self.results if r.status in FAILED or r.status == "throttled"]
        for r in failed[:max_lines]:
            detail = (r.error or "").replace("\n", " ")
            if len(detail) > 90:
                detail = detail[:89] + "…"
            lines.append(f"  {r.status:<14} {r.source_id}: {r.error_kind or '-'}: {detail}")
        if len(failed) > max_lines:
            lines.append(f"  … and {len(failed) - max_lines} more (see `newsmon sources`)")
        lines.append("status: OK" if self.ok else "status: FAILED")
        return "\n".join(lines)
