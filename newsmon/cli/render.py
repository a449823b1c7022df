"""Formatting for ``newsmon sources``: a health table (rich) and a JSON dump."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from newsmon.connectors.health import SourceHealth
from newsmon.connectors.websub.schedule import FeedMode

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


def _fed(mode: FeedMode | None, now: datetime) -> str:
    """``push (lease 9d)``, ``poll``, ``poll (unconfirmed)``: how the source is fed."""
    if mode is None:
        return "poll"
    if mode.fed_by == "push" and mode.lease_expires_at is not None:
        return f"push (lease {_span(int((mode.lease_expires_at - now).total_seconds()))})"
    return mode.label


def _label(labels: tuple[str | None, str | None] | None) -> str:
    """``wire · Thomson Reuters``: a source's kind and owner (feeds.yaml), ``-`` if none."""
    return " · ".join(v for v in labels or () if v) or "-"


def health_table(
    health: Sequence[SourceHealth], *, now: datetime | None = None, width: int = 180,
    fed: Mapping[str, FeedMode] | None = None,
    labels: Mapping[str, tuple[str | None, str | None]] | None = None,
) -> str:
    """The health table as text (rich renders it; colours only when printed to a terminal
    by the caller's console, never in this string). ``fed``: how each source is fed (push
    or poll, websub.schedule.feed_modes), shown as a column when given; ``labels``: each
    source's (kind, owner), shown as a column when given."""
    now = now or datetime.now(UTC)
    table = Table(title=f"{len(health)} sources", title_justify="left")
    columns = ["id", "type", "lang", "state", "last success", "new item", "items", "fails",
               "http", "last error", "next"]
    if fed is not None:
        columns.insert(4, "fed")
    if labels is not None:
        columns.insert(3, "label")
    for column in columns:
        table.add_column(column, no_wrap=column not in ("last error",),
                         overflow="fold" if column == "last error" else "ellipsis")
    for h in health:
        error = "-"
        if h.last_error_kind:
            error = f"{h.last_error_kind}: {h.disabled_reason or h.last_error or ''}"[:80]
        cells = [
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
        ]
        if fed is not None:
            cells.insert(4, _fed(fed.get(h.id), now))
        if labels is not None:
            cells.insert(3, _label(labels.get(h.id)))
        table.add_row(*cells)
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True, force_terminal=False).print(table)
    counts: dict[str, int] = {}
    for h in health:
        counts[h.state] = counts.get(h.state, 0) + 1
    footer = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines = [line.rstrip() for line in buffer.getvalue().rstrip().split("\n")]
    return "\n".join([*lines, footer])


def health_json(health: Sequence[SourceHealth],
                fed: Mapping[str, FeedMode] | None = None,
                labels: Mapping[str, tuple[str | None, str | None]] | None = None) -> str:
    """Every configured source with ``id``, ``type``, ``lang``, ``country`` and its health, as
    a JSON array (times in ISO 8601 UTC); with ``fed``, also ``fed_by`` (push or poll),
    ``subscription`` (its state, or null) and ``lease_expires_at``; with ``labels``, also
    ``kind`` and ``owner`` (null when not labelled)."""
    rows = []
    for h in health:
        row = h.model_dump(mode="json")
        if labels is not None:
            kind, owner = labels.get(h.id) or (None, None)
            row |= {"kind": kind, "owner": owner}
        if fed is not None:
            mode = fed.get(h.id) or FeedMode("poll")
            expires = mode.lease_expires_at
            row |= {"fed_by": mode.fed_by, "subscription": mode.subscription,
                    "lease_expires_at": None if expires is None else
                    expires.isoformat().replace("+00:00", "Z")}
        rows.append(row)
    return json.dumps(rows, indent=2, ensure_ascii=False)


def exit_code(ok: bool) -> int:
    """``newsmon poll --once``: 0 when every source is fine, 1 otherwise."""
    return 0 if ok else 1
