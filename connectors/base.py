"""What every connector is: ``poll(cursor) -> PollResult``, plus optional enrichment.

A connector knows one source. It fetches, parses and turns what it found into RawItems; it
never publishes and never writes state. The runner owns that order — dedup against the seen
items, ``enrich`` only what is new, publish, and only then store the seen marks and the cursor —
so "marked seen only after Kafka acknowledged" holds for every connector alike.

The protocol is small on purpose so a credentialed connector fits beside the web-preview ones:
an MTProto (Telethon) connector for Telegram would take its api id and hash from the
environment, keep the last message id in the same :class:`Cursor`, and return the same
:class:`PollResult`.

Why one result per poll rather than an iterator of items: the cursor may only move once all
items up to it are published (a Telegram poll pages backwards; storing the newest id after the
first page and crashing would skip the older pages for good). A poll's items are bounded (one
feed document, a few preview pages), so holding them is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol

from newsmon.connectors.http import Response
from newsmon.connectors.sources import RssSource, TelegramSource
from newsmon.connectors.state import Cursor
from pydantic import BaseModel, ConfigDict

from newsmon.models import RawItem

PollStatus = Literal["ok", "not-modified", "throttled", "error"]


class Problem(BaseModel):
    """Broken input that did not stop the poll (a bozo feed, an unreadable entry, a failed
    full-text fetch): counted in health and logged, never silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    message: str


class PollResult(BaseModel):
    """What one poll of one source found.

    ``cursor`` is the cursor to store *after* ``items`` are published (on errors, the old one).
    ``error_kind``/``error`` describe a failed poll; ``hard`` marks failures that retrying soon
    will not fix (they count towards disabling the source). ``retry_after_s`` and ``ttl_s`` are
    the server's and the feed's wishes about the next poll; ``skipped`` counts entries that are
    not items by nature (a Telegram sticker without a caption), as opposed to ``problems``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: PollStatus
    cursor: Cursor
    items: tuple[RawItem, ...] = ()
    problems: tuple[Problem, ...] = ()
    skipped: int = 0
    http_status: int | None = None
    error_kind: str | None = None
    error: str | None = None
    hard: bool = False
    retry_after_s: float | None = None
    ttl_s: int | None = None

    @staticmethod
    def failed(
        cursor: Cursor,
        kind: str,
        message: str,
        *,
        hard: bool = False,
        http_status: int | None = None,
        problems: Sequence[Problem] = (),
    ) -> PollResult:
        return PollResult(
            status="error",
            cursor=cursor,
            error_kind=kind,
            error=message,
            hard=hard,
            http_status=http_status,
            problems=tuple(problems),
        )

    @staticmethod
    def throttled(cursor: Cursor, response: Response, now: datetime) -> PollResult:
        """The server (or, for ``response.cooled_down``, an earlier answer of the same host)
        asked us to slow down: no failure, a later poll honouring ``Retry-After``."""
        status = response.status
        if response.cooled_down:
            kind = "host-cooldown"
            message = f"host of {response.url} is cooling down after a 429/503"
        else:
            kind, message = f"http-{status}", f"HTTP {status}"
        return PollResult(
            status="throttled", cursor=cursor, http_status=status, error_kind=kind,
            error=message, retry_after_s=response.retry_after_s(now),
        )


class Connector(Protocol):
    """One source's poller. ``poll`` must not raise for bad input or network failures (they
    are results); an exception from it is a bug, which the runner logs and counts as an error
    of kind ``internal``."""

    @property
    def source(self) -> RssSource | TelegramSource: ...

    def poll(self, cursor: Cursor) -> PollResult: ...

    def enrich(self, items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], tuple[Problem, ...]]:
        """Add what is worth fetching only for new or updated items (full text); return the
        items (same ids and revisions) and the problems met. Identity for most connectors."""
        ...


#: HTTP statuses after which retrying soon is pointless: they count towards disabling.
HARD_STATUSES = frozenset({400, 401, 403, 404, 405, 406, 410, 451})
#: Statuses that ask us to slow down (backoff honouring Retry-After, never disabling) are
#: hosts.THROTTLE_STATUSES: the host gate cools the whole host down on them too.
