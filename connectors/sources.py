"""The configured sources (config/feeds.yaml) as typed, validated models.

A source is an RSS/Atom feed or a public Telegram channel. Its ``id`` (kebab-case) is the Kafka
key and the key of its state, so it must be unique and should never be reused for another
source. ``defaults`` holds what applies to every source unless the source overrides it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from newsmon.connectors.hosts import HostLimit
from newsmon.connectors.http import HttpSettings
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from newsmon.config import MAX_PERIOD_S, ConfigError, read_yaml, validate
from newsmon.models import SourceRef
from newsmon.values import host_problem, http_url_problem

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LANG = re.compile(r"^[a-z]{2,3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# Telegram public usernames: a letter, then letters, digits or underscores, 4-32 in all.
_CHANNEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")

SourceKind = Literal[
    "wire", "broadcaster", "newspaper", "magazine", "ministry", "military", "government",
    "think-tank", "state-media", "osint", "blog", "other",
]


class _Strict(BaseModel):
    # No inf/nan (see pipeline/config.py): `.inf` is valid YAML and passes `ge=0`.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Defaults(_Strict):
    """Settings for every source; the comments say why each default is what it is."""

    #: RSS/Atom: most news feeds change every few minutes, but 15 min keeps a few hundred
    #: feeds well below any publisher's rate limits.
    interval_s: int = Field(default=900, gt=0, le=MAX_PERIOD_S)
    #: Telegram's preview is one HTML page per request; 5 min is polite and still timely.
    telegram_interval_s: int = Field(default=300, gt=0, le=MAX_PERIOD_S)
    #: Politeness floor: no source may be configured to be polled more often than this.
    min_interval_s: int = Field(default=60, ge=0, le=MAX_PERIOD_S)
    #: A feed's ``<ttl>`` is honoured up to this; a feed asking for a day is still polled.
    max_ttl_s: int = Field(default=6 * 3600, ge=0, le=MAX_PERIOD_S)
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


class _SourceBase(_Strict):
    id: str
    name: str
    lang: str
    country: str
    interval_s: int | None = Field(default=None, gt=0, le=MAX_PERIOD_S)
    enabled: bool = True
    kind: SourceKind = "other"
    tags: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _kebab(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be kebab-case: lower-case letters and digits joined by '-'")
        return value

    @field_validator("lang")
    @classmethod
    def _lang(cls, value: str) -> str:
        if not _LANG.match(value):
            raise ValueError("must be an ISO 639-1 code in lower case, like 'en' or 'uk'")
        return value

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.upper()
            if not _COUNTRY.match(value):
                raise ValueError("must be an ISO 3166-1 alpha-2 code, like 'DE' or 'UA'")
        return value


class RssSource(_SourceBase):
    """An RSS or Atom feed. ``file://`` URLs are allowed here (offline demo and tests) because
    the URL is configured by an operator, not taken from feed content."""

    type: Literal["rss"]
    url: str
    #: Fetch each new item's article page and extract its main text.
    full_text: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if re.match(r"^file:///\S*$", value):
            return value
        problem = http_url_problem(value)
        if problem:
            raise ValueError(f"must be an http(s):// URL with a host, or a file:/// URL: "
                             f"{problem}")
        return value

    def ref(self) -> SourceRef:
        return SourceRef(
            id=self.id, type="rss", name=self.name, lang=self.lang, country=self.country
        )

    @property
    def location(self) -> str:
        return self.url


class TelegramSource(_SourceBase):
    """A public Telegram channel, read through its web preview ``<base_url>/s/<channel>``."""

    type: Literal["telegram"]
    channel: str
    base_url: str = "https://t.me"

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        value = value.removeprefix("@")
        if not _CHANNEL.match(value):
            raise ValueError("must be a public channel username (letters, digits, '_')")
        return value

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        problem = http_url_problem(value)
        if problem:
            raise ValueError(f"must be an http(s):// URL: {problem}")
        return value.rstrip("/")

    def ref(self) -> SourceRef:
        return SourceRef(
            id=self.id, type="telegram", name=self.name, lang=self.lang, country=self.country
        )

    @property
    def location(self) -> str:
        return f"{self.base_url}/s/{self.channel}"


Source = Annotated[RssSource | TelegramSource, Field(discriminator="type")]


class FeedsConfig(_Strict):
    defaults: Defaults = Defaults()
    sources: tuple[Source, ...] = ()

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> FeedsConfig:
        # load_sources defers these checks to report each problem on its own line.
        if isinstance(info.context, dict) and info.context.get("defer_checks"):
            return self
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def problems(self) -> list[str]:
        """Checks across sources: unique ids, no interval below the politeness floor."""
        first: dict[str, int] = {}
        problems = []
        for index, source in enumerate(self.sources):
            if source.id in first:
                problems.append(
                    f"sources.{index}.id: duplicate id {source.id!r}"
                    f" (first at sources.{first[source.id]})"
                )
            first.setdefault(source.id, index)
            if source.interval_s is not None and source.interval_s < self.defaults.min_interval_s:
                problems.append(
                    f"sources.{index}.interval_s: {source.interval_s} is below"
                    f" defaults.min_interval_s ({self.defaults.min_interval_s})"
                )
        return problems

    def interval_for(self, source: RssSource | TelegramSource) -> int:
        if source.interval_s is not None:
            return source.interval_s
        if source.type == "telegram":
            return max(self.defaults.telegram_interval_s, self.defaults.min_interval_s)
        return max(self.defaults.interval_s, self.defaults.min_interval_s)

    def get(self, source_id: str) -> RssSource | TelegramSource:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    @property
    def enabled(self) -> tuple[RssSource | TelegramSource, ...]:
        return tuple(s for s in self.sources if s.enabled)


def _resolve_file_urls(data: Any, base: Path) -> Any:
    """``file:relative/path`` in feeds.yaml is relative to the file itself, so the demo
    config can ship with the repository and work from any working directory."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        return data
    sources = []
    for entry in data["sources"]:
        url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(url, str) and url.startswith("file:") and not url.startswith("file:/"):
            entry = {**entry, "url": (base / url[len("file:") :]).resolve().as_uri()}
        sources.append(entry)
    return {**data, "sources": sources}


def load_sources(path: Path) -> FeedsConfig:
    """Read and validate feeds.yaml; raises ConfigError naming the file and the dotted key."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: (top level): must be a mapping"])
    data = _resolve_file_urls(data, path.parent)
    try:
        config = FeedsConfig.model_validate(data, context={"defer_checks": True})
    except ValidationError:
        validate(FeedsConfig, data, path)  # raises ConfigError in the house format
        raise
    problems = config.problems()
    if problems:
        raise ConfigError([f"{path}: {problem}" for problem in problems])
    return config
