"""Source health in the search store: one document per source (``source-health`` index), so
dashboards and the report show which feeds work without access to the poller's state file.

Written after ``newsmon poll --once`` and ``newsmon run``, and by ``newsmon sources
--publish`` (for a poller that runs continuously: schedule it). A store that cannot be reached
is logged, not fatal: polling must not stop because the dashboard's copy is stale.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from newsmon.pipeline.store import DocumentStore, StoreUnavailable

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


def health_documents(
    health: Iterable[BaseModel], checked_at: datetime
) -> list[tuple[str, JsonDict]]:
    """``SourceHealth`` models (connectors.runner) -> (id, document) pairs; the id is the
    source id, so each write replaces that source's previous state."""
    docs = []
    for entry in health:
        doc = entry.model_dump(mode="json")
        source_id = str(doc.pop("id"))
        doc["source_id"] = source_id
        doc["checked_at"] = checked_at.isoformat()
        docs.append((source_id, doc))
    return docs


def publish(store: DocumentStore, health: Iterable[BaseModel],
            now: datetime | None = None) -> int:
    """Write the health documents; returns how many, 0 if the store is unavailable."""
    docs = health_documents(health, now or datetime.now(UTC))
    try:
        failures = store.bulk_write("source-health", docs)
    except StoreUnavailable as exc:
        log.warning("source health not published: %s", exc)
        return 0
    for failure in failures:
        log.warning("source health of %s refused: %s", failure.doc_id, failure.error)
    return len(docs) - len(failures)
