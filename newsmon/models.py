"""The message types every stage shares: connectors, pipeline, search sink and notifiers.

All are frozen pydantic models with UTC datetimes. Ids are derived from content, never from
counters or clocks, so that writing the same thing twice is a no-op and every write may be
retried. No Beam import here: these types are used by the connectors and by plain tests too.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

#: Bumped when a field changes meaning; readers reject versions they do not know.
SCHEMA_VERSION = 1

#: A source type's name (``rss``, ``telegram``, ``gdelt``...). Which names exist is the word of
#: the connectors' registry (connectors/registry.py): feeds.yaml accepts the registered types
#: only, each type's model narrows ``type`` to its own name, and an item carries its source's.
#: The kernel sits below the connectors and cannot ask the registry, so here only the form is
#: checked (what a metrics label and an index keyword take): a new type needs no edit here.
SOURCE_TYPE_NAME = r"^[a-z][a-z0-9_]{0,31}$"
SourceType = Annotated[str, StringConstraints(pattern=SOURCE_TYPE_NAME)]


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        # A naive time from a feed has no zone to trust; treating it as UTC is the
        # convention feedparser itself uses for its *_parsed fields.
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

#: How an item reached newsmon: fetched by a poll, or pushed by a WebSub hub. Carried from the
#: item to its article and alert, so time-to-alert is measured per path (issue 16, point 5).
FedBy = Literal["poll", "push"]


def content_id(*parts: str, length: int = 24) -> str:
    """A stable id from the given parts (hex of a SHA-256 over them, unit-separated)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceKind(StrEnum):
    """What kind of outlet a source is: who speaks when it reports (labels of issue 16).

    The one list: feeds.yaml, documents, alerts, the report and Kibana use these values."""

    WIRE = "wire"
    PUBLIC_BROADCASTER = "public_broadcaster"
    COMMERCIAL = "commercial"
    STATE_AFFILIATED = "state_affiliated"
    GOVERNMENT_MILITARY = "government_military"
    THINK_TANK = "think_tank"
    OSINT_CHANNEL = "osint_channel"
    BLOG = "blog"


class SourceRef(_Frozen):
    """Where an item came from, as configured in config/feeds.yaml: with its labels (kind,
    country, owner) when the source has them. An unlabelled source has ``kind`` None and an
    empty ``owner``."""

    id: str
    type: SourceType
    name: str = ""
    lang: str = ""
    country: str = ""
    kind: SourceKind | None = None
    owner: str = ""


class RawItem(_Frozen):
    """One item as a connector saw it: the Kafka message between connectors and pipeline.

    ``item_id`` identifies the item across polls and restarts (source + guid, else link, else
    text); ``revision`` changes when the same item comes back with new content, so an update
    is told from a repeat.
    """

    schema_version: int = SCHEMA_VERSION
    item_id: str
    revision: str
    source: SourceRef
    guid: str = ""
    url: str = ""
    title: str = ""
    summary: str = ""
    content: str = ""
    published_at: UtcDatetime | None = None
    first_seen_at: UtcDatetime
    is_update: bool = False
    fed_by: FedBy = "poll"

    @staticmethod
    def make(
        *,
        source: SourceRef,
        guid: str = "",
        url: str = "",
        title: str = "",
        summary: str = "",
        content: str = "",
        published_at: datetime | None = None,
        first_seen_at: datetime,
        is_update: bool = False,
    ) -> RawItem:
        """Build an item with its content-derived id and revision."""
        body = "\n".join((title, summary, content))
        key = guid or url or "text:" + content_id(body)
        return RawItem(
            item_id=content_id(source.id, key),
            revision=content_id(body, length=16),
            source=source,
            guid=guid,
            url=url,
            title=title,
            summary=summary,
            content=content,
            published_at=published_at,
            first_seen_at=first_seen_at,
            is_update=is_update,
        )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @staticmethod
    def from_json(data: bytes | str) -> RawItem:
        """Parse a message; raises ``ValueError`` (pydantic's ValidationError) on bad input."""
        item = RawItem.model_validate_json(data)
        if item.schema_version > SCHEMA_VERSION:
            raise ValueError(f"unknown schema_version {item.schema_version}")
        return item


class Evidence(_Frozen):
    """A span of the article text that made a concept group fire."""

    group: str
    term: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    snippet: str


class TopicMatch(_Frozen):
    topic: str
    score: float
    groups: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    attribute: str | None = None
    #: Found by language-independent evidence only, in a language without rules: a lower
    #: score, for a person to look at (rules.ReviewDef).
    review: bool = False


class Entity(_Frozen):
    kind: Literal["weapon", "country", "leader", "organisation"]
    name: str


class Classification(_Frozen):
    topics: tuple[TopicMatch, ...] = ()
    entities: tuple[Entity, ...] = ()


class Article(_Frozen):
    """A normalized, classified document as it is written to the search server.

    ``doc_id`` derives from the canonical URL (else the item id), so copies of one page
    collapse into one document; ``story_id`` is shared by near-duplicate rewrites.
    """

    doc_id: str
    item_id: str
    revision: str
    story_id: str
    source: SourceRef
    url: str
    title: str
    text: str
    lang: str
    published_at: UtcDatetime
    first_seen_at: UtcDatetime
    topics: tuple[TopicMatch, ...] = ()
    entities: tuple[Entity, ...] = ()
    fed_by: FedBy = "poll"

    def topic(self, name: str) -> TopicMatch | None:
        return next((t for t in self.topics if t.topic == name), None)


class Corroboration(_Frozen):
    """How far an alert's story is corroborated (pipeline/alerts/sources.py): ``independent``
    sources by the criterion (at least ``min_sources`` sources differing pairwise in every
    label of ``distinct``), ``required`` when the rule holds notifications until then."""

    required: bool = False
    min_sources: int = 2
    distinct: tuple[str, ...] = ("owner",)
    independent: int = 0
    corroborated_at: UtcDatetime | None = None


class Alert(_Frozen):
    """One alert per rule and story; later copies of the story update it."""

    alert_id: str
    rule: str
    topic: str
    story_id: str
    doc_ids: tuple[str, ...]
    title: str
    url: str
    score: float
    source_ids: tuple[str, ...]
    languages: tuple[str, ...]
    evidence: tuple[Evidence, ...] = ()
    created_at: UtcDatetime
    updated_at: UtcDatetime
    #: Who reports the story: each source once, with its labels (alerts stored before the
    #: labels have only ``source_ids``).
    sources: tuple[SourceRef, ...] = ()
    #: The corroboration criterion is met (see ``corroboration``); it stays met.
    corroborated: bool = False
    corroboration: Corroboration | None = None
    #: The times of the story's first copy, for time-to-alert (alerts stored before them have
    #: none): published (the source's date, else first seen), first seen by a connector,
    #: indexed (the alert stage's clock once the store acknowledged the write), and how it
    #: came (``fed_by``). ``notified_at`` sits with the delivery state (alerts/state.py).
    published_at: UtcDatetime | None = None
    first_seen_at: UtcDatetime | None = None
    indexed_at: UtcDatetime | None = None
    fed_by: FedBy = "poll"

    @staticmethod
    def id_for(rule: str, story_id: str) -> str:
        return content_id("alert", rule, story_id)


#: Every stage name, the one definition: the pipeline's stages in the order of the graph
#: (app.build_pipeline; their in/out counts are labelled with these), then the pollers'
#: (``poll``, ``publish``). ``alert`` is the old name of ``alerts``, kept so that dead letters
#: stored under it still load.
Stage = Literal["decode", "normalize", "classify", "group", "write", "alerts", "notify",
                "dead_letters", "poll", "publish", "alert"]
STAGES: tuple[Stage, ...] = get_args(Stage)
#: The pipeline's stages, in graph order.
PIPELINE_STAGES: tuple[Stage, ...] = STAGES[:8]


class DeadLetter(_Frozen):
    """An input that a stage could not handle, parked with its error so it can be replayed."""

    dl_id: str
    stage: Stage
    error: str
    source_id: str
    payload: str
    created_at: UtcDatetime

    def document(self, *, replayed: bool = False) -> dict[str, Any]:
        """The letter as the dead-letter index stores it: its fields and whether it was
        replayed (every writer of the index, the pipeline's and the pollers', uses this)."""
        return self.model_dump(mode="json") | {"replayed": replayed}

    @staticmethod
    def make(*, stage: Stage, error: str, source_id: str, payload: str) -> DeadLetter:
        return DeadLetter(
            dl_id=content_id("dead", stage, source_id, payload),
            stage=stage,
            error=error,
            source_id=source_id,
            payload=payload,
            created_at=datetime.now(UTC),
        )
