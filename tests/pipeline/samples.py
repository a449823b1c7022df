"""The sample articles the pipeline tests feed through Kafka and the backfill: two reports of
one story (WIRE and its REWRITE), one of another topic (TROOPS), and one matching no rule
(OTHER)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from newsmon.config import SearchSettings, Settings
from newsmon.models import RawItem, SourceRef
from newsmon.pipeline.alerts.config import AlertsConfig
from newsmon.pipeline.stages.base import RunContext
from newsmon.pipeline.store import open_store

ROOT = Path(__file__).resolve().parents[2]

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

#: Fields of stored documents that hold the time a run did something (the deliveries carry
#: the time each message went out): two runs of the same data differ only in these.
CLOCKS = frozenset({"indexed_at", "created_at", "updated_at", "deliveries", "notified_at"})

WIRE = ("Ukrainian forces struck a military airfield in Russia's Kursk region with US-made "
        "ATACMS missiles overnight, officials in Kyiv said, days after the White House allowed "
        "the long-range weapons to be used against targets on Russian territory. Moscow said "
        "air defences shot down most of the missiles and warned of a response.")
REWRITE = ("Officials in Kyiv said Ukrainian forces struck a military airfield in Russia's Kursk "
           "region overnight with US-made ATACMS missiles, days after the White House allowed "
           "the long-range weapons to be used against targets on Russian territory. Moscow "
           "claimed its air defences shot down most of the missiles.")
TROOPS = ("France and Britain are discussing sending troops to Ukraine as part of a reassurance "
          "force after a ceasefire, diplomats said, while Germany ruled out ground troops.")
OTHER = ("Wheat futures fell for a third day as shipments from Black Sea ports rose to their "
         "highest level since the spring, traders in Chicago and Paris said on Friday.")


def sample_item(src: str, guid: str, title: str, text: str, *, minutes: int = 0,
                lang: str = "en") -> RawItem:
    """An RSS item of source ``src``, published and first seen ``minutes`` after NOW."""
    ref = SourceRef(id=src, type="rss", name=src, lang=lang, country="GB")
    seen = NOW + timedelta(minutes=minutes)
    return RawItem.make(source=ref, guid=guid, url=f"https://{src}.example/{guid}",
                        title=title, summary=text, published_at=seen, first_seen_at=seen)


def story_items(minutes: int = 0) -> list[RawItem]:
    """WIRE and REWRITE (one story, two sources) and TROOPS, ``minutes`` after NOW."""
    return [
        sample_item("wire-a", "1", "ATACMS strike on Kursk airfield", WIRE, minutes=minutes),
        sample_item("paper-b", "2", "Kyiv: ATACMS hit airfield in Kursk", REWRITE,
                    minutes=minutes),
        sample_item("paper-b", "3", "Troops for Ukraine discussed", TROOPS, minutes=minutes),
    ]


@contextmanager
def store_context(backend: str, state_dir: Path, *, prefix: str,
                  alerts: AlertsConfig | None = None) -> Iterator[RunContext]:
    """A run context on a fresh store, its indices and mappings created as a pipeline run
    creates them first: the embedded store in ``state_dir``, or a private index prefix on the
    Elasticsearch of ``NEWSMON_ELASTICSEARCH_URL`` (deleted afterwards). A missing server
    fails the test (KeyError); it does not skip it."""
    if backend == "embedded":
        search = SearchSettings()
    else:
        search = SearchSettings(backend="elasticsearch",
                                url=os.environ["NEWSMON_ELASTICSEARCH_URL"],
                                index_prefix=f"{prefix}{uuid.uuid4().hex[:8]}")
    settings = Settings(state_dir=state_dir, topics=ROOT / "config" / "topics.yaml",
                        search=search)
    store = open_store(search, state_dir)
    store.setup()
    store.close()
    try:
        yield RunContext(settings=settings, alerts=alerts or AlertsConfig(), now=NOW)
    finally:
        if search.backend != "embedded":
            httpx.delete(f"{search.url}/{search.index_prefix}-*", timeout=60)
