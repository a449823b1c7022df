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

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from babel import Locale
from pydantic import BaseModel, ConfigDict, Field, field_validator

from newsmon.config import MAX_PERIOD_S, StrictModel
from newsmon.connectors.hosts import THROTTLE_STATUSES, HostLimit
from newsmon.connectors.http import HttpClient, HttpSettings, Response
from newsmon.connectors.records import Cursor
from newsmon.connectors.websub.records import PushSettings
from newsmon.models import RawItem, SourceKind, SourceRef
from newsmon.models import SourceType as TypeName
from newsmon.values import host_problem, matching

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LANG = re.compile(r"^[a-z]{2,3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")

#: ISO 3166-1 alpha-2, from CLDR (babel, already a dependency): its two-letter territories
#: minus the codes CLDR adds that ISO 3166-1 does not assign (exceptional reservations such as
#: EU, UN, user-assigned XK, unknown ZZ).
_NOT_ISO_3166_1 = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"})
ISO_COUNTRIES = frozenset(
    code for code in map(str, Locale("en").territories)
    if len(code) == 2 and code.isalpha() and code not in _NOT_ISO_3166_1)

#: The kinds of the first release, split or renamed since: named in the error, so that an
#: operator's older feeds.yaml says what to write instead.
_OLD_KINDS = {
    "broadcaster": "public_broadcaster or commercial",
    "newspaper": "commercial", "magazine": "commercial", "other": "commercial or blog",
    "ministry": "government_military", "military": "government_military",
    "government": "government_military", "think-tank": "think_tank",
    "state-media": "state_affiliated", "osint": "osint_channel",
}

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
    def refused(
        log: logging.Logger, sid: str, cursor: Cursor, response: Response, now: datetime,
        url: str,
    ) -> PollResult | None:
        """The result for an answer that carries no document — throttled (429/503 or the
        host's cooldown) or any other non-2xx, logged to the connector's ``log`` with ``sid``
        — or None for a usable one.

        ``url`` is the address named in the message (the requested page or the final one).
        """
        status = response.status
        if status in THROTTLE_STATUSES:
            throttled = PollResult.throttled(cursor, response, now)
            # One warning per 429; the sources that only met the host's cooldown say so quietly.
            log.log(logging.INFO if response.cooled_down else logging.WARNING,
                    "source %s: %s, retry after %s s", sid, throttled.error,
                    throttled.retry_after_s)
            return throttled
        if not response.ok:
            log.warning("source %s: HTTP %s from %s", sid, status, url)
            return PollResult.failed(
                cursor, f"http-{status}", f"HTTP {status} from {url}",
                hard=status in HARD_STATUSES, http_status=status,
            )
        return None

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
    def source(self) -> SourceBase: ...

    def poll(self, cursor: Cursor) -> PollResult: ...

    def enrich(self, items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], tuple[Problem, ...]]:
        """Add what is worth fetching only for new or updated items (full text); return the
        items (same ids and revisions) and the problems met. Identity for most connectors."""
        ...


#: HTTP statuses after which retrying soon is pointless: they count towards disabling.
HARD_STATUSES = frozenset({400, 401, 403, 404, 405, 406, 410, 451})
#: Statuses that ask us to slow down (backoff honouring Retry-After, never disabling) are
#: hosts.THROTTLE_STATUSES: the host gate cools the whole host down on them too.


def utc_now() -> datetime:
    """The connectors' default clock (tests pass their own)."""
    return datetime.now(UTC)


# --- what every source has ------------------------------------------------------------


class Defaults(StrictModel):
    """Settings for every source; the comments say why each default is what it is."""

    #: RSS/Atom: most news feeds change every few minutes, but 15 min keeps a few hundred
    #: feeds well below any publisher's rate limits.
    interval_s: int = Field(default=900, gt=0, le=MAX_PERIOD_S)
    #: Telegram's preview is one HTML page per request; 5 min is polite and still timely.
    telegram_interval_s: int = Field(default=300, gt=0, le=MAX_PERIOD_S)
    #: Politeness floor: no source may be configured to be polled more often than this.
    min_interval_s: int = Field(default=60, ge=0, le=MAX_PERIOD_S)
    #: A feed's ``<ttl>`` may stretch a source's interval only when the operator says so: a
    #: watched source left at ``ttl`` 60 by its CMS would otherwise be polled hourly.
    respect_ttl: bool = False
    #: With ``respect_ttl``, a ``<ttl>`` is honoured up to this; a feed asking for a day is
    #: still polled.
    max_ttl_s: int = Field(default=6 * 3600, ge=0, le=MAX_PERIOD_S)
    #: The period of the timer or CronJob running ``newsmon poll --once`` (the shipped ones
    #: tick every 5 min). A pass also polls what falls due before the next tick could start,
    #: instead of leaving it a whole period late (runner.is_due); 0: only what is due now.
    schedule_tick_s: int = Field(default=300, ge=0, le=MAX_PERIOD_S)
    #: Exponential backoff on errors doubles the interval per failure, up to this.
    max_backoff_s: int = Field(default=6 * 3600, gt=0, le=MAX_PERIOD_S)
    #: Consecutive hard failures (404, 410, unresolvable host, not a feed...) before a source
    #: is disabled and reported; transient failures (timeouts, 5xx) only back off.
    disable_after: int = Field(default=5, gt=0)
    #: Fetches in flight at once; fetching is I/O-bound, see runner.Poller.
    concurrency: int = Field(default=16, gt=0, le=256)
    #: Telegram paging: at most this many ``?before=`` pages per poll (the first poll of a
    #: channel reads only the newest page: no backfill of a channel's whole history).
    telegram_max_pages: int = Field(default=5, gt=0)
    #: Pause between two page requests to the same channel.
    telegram_page_delay_s: float = Field(default=1.0, ge=0, le=3600)
    #: Full text: at most this many article pages fetched per feed and poll.
    full_text_max_items: int = Field(default=30, ge=0)
    #: Items absent from their feed for this long are forgotten by dedup (the state would
    #: grow without end otherwise). Feeds keep items days to weeks; 90 days is far beyond.
    seen_retention_days: int = Field(default=90, gt=0, le=MAX_PERIOD_S // 86400)
    http: HttpSettings = HttpSettings()
    #: Politeness for every host: requests in flight and spacing (connectors/hosts.py).
    per_host: HostLimit = HostLimit()
    #: Limits for named hosts, instead of ``per_host`` (``t.me``: every Telegram channel).
    hosts: dict[str, HostLimit] = Field(default_factory=dict)
    #: WebSub push (connectors/websub): off until ``callback_url`` is set.
    push: PushSettings = PushSettings()

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: dict[str, HostLimit]) -> dict[str, HostLimit]:
        for name in value:
            if name != name.lower() or host_problem(name):
                raise ValueError(f"{name!r}: must be a host name in lower case, like 't.me'")
        return value

    @field_validator("http")
    @classmethod
    def _http(cls, value: HttpSettings) -> HttpSettings:
        # HttpSettings is the fetcher's own model; what it cannot refuse is refused here.
        timeouts = (value.connect_timeout_s, value.read_timeout_s, value.total_timeout_s)
        if not all(math.isfinite(t) and t <= 3600 for t in timeouts):
            raise ValueError("timeouts must be finite numbers of seconds, at most 3600")
        # Sent as a header on every request: a non-ASCII character crashed the poll pass, a
        # newline made every fetch fail.
        if not re.match(r"^[\x20-\x7e]{1,200}$", value.user_agent):
            raise ValueError("user_agent must be 1-200 printable ASCII characters")
        return value


class SourceBase(StrictModel):
    """What every source has, whatever its type: the id (the Kafka key and the key of its
    state), its display name, language, its labels (country, kind, owner), its own interval,
    whether it is polled. Each source type (rss.py, telegram.py) adds its own fields and a
    ``type`` literal.

    ``kind`` and ``owner`` are optional so that a new source can be tried before it is
    researched: such a source is unlabelled (``newsmon config check`` warns, alerts show it
    as "unlabelled", corroboration counts it as its own owner)."""

    #: The source type's name (``rss``, ``telegram``): each type narrows it to its literal.
    type: TypeName
    id: str
    name: str
    lang: str
    country: str
    interval_s: int | None = Field(default=None, gt=0, le=MAX_PERIOD_S)
    enabled: bool = True
    #: What kind of outlet it is (models.SourceKind); None: not labelled yet.
    kind: SourceKind | None = None
    #: Its owner or affiliation, free text ("Thomson Reuters", "Russian government"): sources
    #: of one owner do not corroborate each other.
    owner: str = Field(default="", max_length=200)
    tags: tuple[str, ...] = ()

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        if isinstance(value, str) and value in _OLD_KINDS:
            raise ValueError(f"kind {value!r} is no longer a kind: use {_OLD_KINDS[value]}")
        return value

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        return " ".join(value.split())

    @property
    def unlabelled(self) -> list[str]:
        """The labels this source lacks (``kind``, ``owner``): empty when it is labelled."""
        return [name for name, missing in (("kind", self.kind is None),
                                           ("owner", not self.owner)) if missing]

    @field_validator("id")
    @classmethod
    def _kebab(cls, value: str) -> str:
        return matching(_ID, value, "kebab-case: lower-case letters and digits joined by '-'")

    @field_validator("lang")
    @classmethod
    def _lang(cls, value: str) -> str:
        return matching(_LANG, value, "an ISO 639-1 code in lower case, like 'en' or 'uk'")

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> Any:
        if isinstance(value, str):
            code = matching(_COUNTRY, value.upper(),
                            "an ISO 3166-1 alpha-2 code, like 'DE' or 'UA'")
            if code not in ISO_COUNTRIES:
                raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
            return code
        return value

    def ref(self) -> SourceRef:
        """The source as its items name it."""
        return SourceRef(id=self.id, type=self.type, name=self.name, lang=self.lang,
                         country=self.country, kind=self.kind, owner=self.owner)

    @property
    def location(self) -> str:
        """Where the source is read from (a URL), for health tables and dead letters."""
        raise NotImplementedError


# --- what a source type is ---------------------------------------------------------------


@dataclass(frozen=True)
class Wiring:
    """What the runner hands every connector it builds: the defaults, the client for
    configured URLs (no address guard), the guarded client for URLs taken from content, and
    the clock and sleep (tests pass their own)."""

    defaults: Defaults
    http: HttpClient
    article_http: HttpClient
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]


S = TypeVar("S", bound=SourceBase)


@dataclass(frozen=True)
class SourceType(Generic[S]):
    """One source type: its config model (``type: Literal[name]`` tells it apart in
    feeds.yaml), how to build its connector, and its default polling interval. Each source
    module declares one; registry.py lists them."""

    name: str
    model: type[S]
    connect: Callable[[S, Wiring], Connector]
    #: The interval of a source that sets none, before the politeness floor is applied.
    default_interval: Callable[[Defaults], int]


class ConnectorBase(Generic[S]):
    """What every connector keeps: its source, the defaults, the HTTP client and the clock.
    ``enrich`` is the identity unless a connector has something worth fetching per item."""

    def __init__(self, source: S, defaults: Defaults, http: HttpClient, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._source = source
        self.defaults = defaults
        self.http = http
        self.clock = clock

    @property
    def source(self) -> S:
        return self._source

    def enrich(self, items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], tuple[Problem, ...]]:
        return tuple(items), ()
