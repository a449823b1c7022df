"""Formatting for ``newsmon sources``: a health table (rich) and a JSON dump."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from newsmon.connectors.health import SourceHealth

_STATE_STYLE = {
    "ok": "green",
    "failing": "yellow",
    "disabled": "bold red",
    "never-polled": "dim",
    "off": "dim",
}


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    seconds = int((now - value).total_seconds())
    if seconds < 0:
        return f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def health_table(
    health: Sequence[SourceHealth], *, now: datetime | None = None, width: int = 160
) -> str:
    """The health table as text (rich renders it; colours only when printed to a terminal
    by the caller's console, never in this string)."""
    now = now or datetime.now(UTC)
    table = Table(title=f"{len(health)} sources", title_justify="left")
    for column in ("id", "type", "lang", "state", "last success", "new item", "items",
                   "fails", "http", "last error", "next"):
        table.add_column(column, no_wrap=column not in ("last error",),
                         overflow="fold" if column == "last error" else "ellipsis")
    for h in health:
        error = "-"
        if h.last_error_kind:
            error = f"{h.last_error_kind}: {h.disabled_reason or h.last_error or ''}"[:80]
        table.add_row(
            h.id,
            h.type,
            f"{h.lang}/{h.country}",
            f"[{_STATE_STYLE.get(h.state, '')}]{h.state}[/]",
            _ago(h.last_success_at, now),
            _ago(h.last_new_item_at, now),
            str(h.items_seen),
            str(h.consecutive_failures),
            str(h.last_status or "-"),
            error,
            _ago(h.next_due_at, now) if h.state not in ("off", "disabled") else "-",
        )
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True, force_terminal=False).print(table)
    counts: dict[str, int] = {}
    for h in health:
        counts[h.state] = counts.get(h.state, 0) + 1
    footer = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines = [line.rstrip() for line in buffer.getvalue().rstrip().split("\n")]
    return "\n".join([*lines, footer])


def health_json(health: Sequence[SourceHealth]) -> str:
    """Every configured source with ``id``, ``type``, ``lang``, ``country`` and its health, as
    a JSON array (times in ISO 8601 UTC)."""
    return json.dumps([h.model_dump(mode="json") for h in health], indent=2, ensure_ascii=False)


def exit_code(ok: bool) -> int:
    """``newsmon poll --once``: 0 when every source is fine, 1 otherwise."""
    return 0 if ok else 1
