"""The search-server adapter: one small interface over Elasticsearch, OpenSearch and SQLite.

Beam's Python SDK has no Elasticsearch sink (apache/beam#30594), so the pipeline's write stages
call this adapter from DoFns. Contract shared by every backend:

* writes are keyed by content-derived ids, so re-writing after a crash changes nothing;
* ``bulk_write`` returns the documents the server rejected (mapping errors and the like: bad
  data, which the caller dead-letters) and raises :class:`StoreUnavailable` when the server
  cannot be reached, so the run fails and is retried without committing offsets;
* ``create`` is atomic (exactly one caller wins) and ``replace_if`` is an optimistic,
  version-guarded write: together they merge alert updates without a script engine, which the
  Maven Central Elasticsearch build lacks;
* ``get``, ``find_terms`` and ``scan`` read across every index of a kind (for articles: the
  monthly indices behind their alias).
"""

from __future__ import annotations

from pathlib import Path

from newsmon.config import SearchSettings
from newsmon.pipeline.store.base import DocumentStore, JsonDict, Versioned, parse_time
from newsmon.pipeline.store.bulk import (
    BulkAction,
    BulkFailure,
    ItemResult,
    StoreSetupError,
    StoreUnavailable,
    backoff_s,
    bulk_with_retry,
)
from newsmon.pipeline.store.server import SearchServerStore
from newsmon.pipeline.store.sqlite import SqliteStore

__all__ = [
    "BulkAction", "BulkFailure", "DocumentStore", "ItemResult", "JsonDict", "SearchServerStore",
    "SqliteStore", "StoreSetupError", "StoreUnavailable", "Versioned", "backoff_s",
    "bulk_with_retry", "open_store", "parse_time",
]


def open_store(settings: SearchSettings, state_dir: Path) -> DocumentStore:
    """The store the settings name; the embedded one lives in ``state_dir``."""
    if settings.backend == "embedded":
        return SqliteStore(state_dir / "documents.sqlite")
    return SearchServerStore(settings)
