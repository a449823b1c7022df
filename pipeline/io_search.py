"""The search-server adapter: one small interface over Elasticsearch, OpenSearch and SQLite.

Beam's Python SDK has no Elasticsearch sink (apache/beam#30594), so the pipeline's write stages
call this adapter from DoFns. Contract shared by every backend:

* writes are keyed by content-derived ids, so re-writing after a crash changes nothing;
* ``bulk_write`` returns the documents the server rejected (mapping errors and the like: bad
  data, which the caller dead-letters) and raises :class:`StoreUnavailable` when the server
  cannot be reached, so the run fails and is retried without committing offsets;
* ``create`` is atomic (exactly one caller wins) and ``replace_if`` is an optimistic,
  version-guarded write: together they merge alert updates without a script engine, which the
  Maven Central Elasticsearch build lacks.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .config import SearchSettings
from .mappings import MAPPINGS, index_name, index_template

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class StoreUnavailable(RuntimeError):
    """The search server could not be reached or answered with a server error."""


@dataclass(frozen=True)
class BulkFailure:
    doc_id: str
    status: int
    error: str


@dataclass(frozen=True)
class Versioned:
    """A stored document with the version token ``replace_if`` needs."""

    source: JsonDict
    version: tuple[int, int]


class DocumentStore(Protocol):
    backend: str

    def setup(self) -> None: ...
    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]: ...
    def get(self, kind: str, doc_id: str) -> Versioned | None: ...
    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool: ...
    def replace_if(
        self, kind: str, doc_id: str, doc: JsonDict, version: tuple[int, int]
    ) -> bool: ...
    def find_terms(
        self, kind: str, field: str, values: Sequence[str], size: int = 50
    ) -> list[JsonDict]: ...
    def all_docs(self, kind: str, size: int = 10_000) -> list[JsonDict]: ...
    def count(self, kind: str) -> int: ...
    def refresh(self, kind: str) -> None: ...
    def close(self) -> None: ...


# --- Elasticsearch and OpenSearch ---------------------------------------------------------


class SearchServerStore:
    """Elasticsearch (``elasticsearch`` client) or OpenSearch (``opensearch-py``).

    The two clients share the bulk helper's shape and most call signatures; where they differ
    (keyword names of the 8.x client versus ``body=``) this class says so.
    """

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings
        self.backend: str = settings.backend
        self.prefix = settings.index_prefix
        if settings.backend == "elasticsearch":
            import elasticsearch
            from elasticsearch import helpers

            auth: dict[str, Any] = {}
            if settings.ca_certs:
                auth["ca_certs"] = settings.ca_certs
            if settings.api_key is not None:
                auth["api_key"] = settings.api_key.get_secret_value()
            elif settings.username and settings.password is not None:
                auth["basic_auth"] = (settings.username, settings.password.get_secret_value())
            self.client: Any = elasticsearch.Elasticsearch(
                settings.url,
                verify_certs=settings.verify_certs,
                request_timeout=settings.request_timeout_s,
                **auth,
            )
            self._helpers: Any = helpers
            self._unavailable: tuple[type[BaseException], ...] = (
                elasticsearch.ConnectionError,
                elasticsearch.TransportError,
            )
            self._conflict: type[BaseException] = elasticsearch.ConflictError
            self._not_found: type[BaseException] = elasticsearch.NotFoundError
        else:
            import opensearchpy
            from opensearchpy import helpers as os_helpers

            http_auth = None
            if settings.username and settings.password is not None:
                http_auth = (settings.username, settings.password.get_secret_value())
            headers = {}
            if settings.api_key is not None:
                headers["Authorization"] = "ApiKey " + settings.api_key.get_secret_value()
            self.client = opensearchpy.OpenSearch(
                hosts=[settings.url],
                http_auth=http_auth,
                headers=headers or None,
                verify_certs=settings.verify_certs,
                ca_certs=settings.ca_certs,
                timeout=settings.request_timeout_s,
            )
            self._helpers = os_helpers
            self._unavailable = (opensearchpy.ConnectionError,)
            self._conflict = opensearchpy.ConflictError
            self._not_found = opensearchpy.NotFoundError

    def _name(self, kind: str) -> str:
        return index_name(self.prefix, kind)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._unavailable as exc:
            if getattr(exc, "status_code", None) in (400, 404, 409):
                raise
            raise StoreUnavailable(f"{self.backend} at {self.settings.url}: {exc}") from exc

    def setup(self) -> None:
        """Apply the index templates and create the indices. Idempotent."""
        for kind in MAPPINGS:
            body = index_template(self.prefix, kind)
            name = f"{self.prefix}-{kind}"
            if self.backend == "elasticsearch":
                self._call(self.client.indices.put_index_template, name=name, **body)
                exists = self._call(self.client.indices.exists, index=self._name(kind))
                if not exists:
                    self._create_index(kind)
            else:
                self._call(self.client.indices.put_index_template, name=name, body=body)
                if not self._call(self.client.indices.exists, index=self._name(kind)):
                    self._create_index(kind)

    def _create_index(self, kind: str) -> None:
        try:
            self._call(self.client.indices.create, index=self._name(kind))
        except Exception as exc:
            # Another process created it between our check and our call: that is fine.
            if "resource_already_exists_exception" not in str(exc):
                raise

    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]:
        index = self._name(kind)
        actions = ({"_index": index, "_id": doc_id, "_source": doc} for doc_id, doc in docs)
        failures: list[BulkFailure] = []
        try:
            # Only throttled documents (429) are retried, with the helper's capped backoff;
            # rejected ones come back as failures for the caller to dead-letter.
            for ok, info in self._helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=self.settings.bulk_batch_size,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=self.settings.max_retries,
                initial_backoff=1,
                max_backoff=30,
            ):
                if not ok:
                    item = next(iter(info.values()))
                    status = int(item.get("status", 0))
                    if status >= 500 or status == 429:
                        raise StoreUnavailable(f"{self.backend}: bulk item status {status}")
                    failures.append(
                        BulkFailure(
                            doc_id=str(item.get("_id")),
                            status=status,
                            error=json.dumps(item.get("error"), ensure_ascii=False)[:2000],
                        )
                    )
        except self._unavailable as exc:
            raise StoreUnavailable(f"{self.backend} at {self.settings.url}: {exc}") from exc
        return failures

    def get(self, kind: str, doc_id: str) -> Versioned | None:
        try:
            res = self._call(self.client.get, index=self._name(kind), id=doc_id)
        except self._not_found:
            return None
        return Versioned(dict(res["_source"]), (int(res["_seq_no"]), int(res["_primary_term"])))

    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool:
        try:
            if self.backend == "elasticsearch":
                self._call(
                    self.client.create, index=self._name(kind), id=doc_id, document=doc
                )
            else:
                self._call(
                    self.client.create, index=self._name(kind), id=doc_id, body=doc
                )
        except self._conflict:
            return False
        return True

    def replace_if(
        self, kind: str, doc_id: str, doc: JsonDict, version: tuple[int, int]
    ) -> bool:
        body_key = "document" if self.backend == "elasticsearch" else "body"
        try:
            self._call(
                self.client.index,
                index=self._name(kind),
                id=doc_id,
                if_seq_no=version[0],
                if_primary_term=version[1],
                **{body_key: doc},
            )
        except self._conflict:
            return False
        return True

    def _search(self, kind: str, query: JsonDict, size: int) -> list[JsonDict]:
        body = {"query": query, "size": size, "sort": [{"_doc": "asc"}]}
        if self.backend == "elasticsearch":
            res = self._call(self.client.search, index=self._name(kind), **body)
        else:
            res = self._call(self.client.search, index=self._name(kind), body=body)
        return [dict(hit["_source"]) for hit in res["hits"]["hits"]]

    def find_terms(
        self, kind: str, field: str, values: Sequence[str], size: int = 50
    ) -> list[JsonDict]:
        if not values:
            return []
        return self._search(kind, {"terms": {field: list(values)}}, size)

    def all_docs(self, kind: str, size: int = 10_000) -> list[JsonDict]:
        return self._search(kind, {"match_all": {}}, size)

    def count(self, kind: str) -> int:
        return int(self._call(self.client.count, index=self._name(kind))["count"])

    def refresh(self, kind: str) -> None:
        self._call(self.client.indices.refresh, index=self._name(kind))

    def close(self) -> None:
        self.client.close()


# --- the embedded default -----------------------------------------------------------------


class SqliteStore:
    """A local, single-file document store with the same contract, for the embedded default.

    SQLite rather than an embedded search engine: it ships with Python, is safe across
    processes, and the embedded default needs only keyed writes and term look-ups.
    """

    backend = "embedded"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    @property
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, version INTEGER,"
                " body TEXT, PRIMARY KEY (kind, id))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS terms (kind TEXT, field TEXT, value TEXT, id TEXT)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS terms_idx ON terms (kind, field, value)")
            self._local.db = db
        return db

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]  # re-open after unpickling in a worker

    def setup(self) -> None:
        _ = self._db

    def _put(self, kind: str, doc_id: str, doc: JsonDict, version: int) -> None:
        db = self._db
        db.execute(
            "INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)",
            (kind, doc_id, version, json.dumps(doc, ensure_ascii=False, default=str)),
        )
        db.execute("DELETE FROM terms WHERE kind = ? AND id = ?", (kind, doc_id))
        rows = [
            (kind, field, str(value), doc_id)
            for field, value in _keyword_values(doc)
        ]
        db.executemany("INSERT INTO terms VALUES (?, ?, ?, ?)", rows)

    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for doc_id, doc in docs:
                row = db.execute(
                    "SELECT version FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
                ).fetchone()
                self._put(kind, doc_id, doc, (row[0] + 1) if row else 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return []

    def get(self, kind: str, doc_id: str) -> Versioned | None:
        row = self._db.execute(
            "SELECT body, version FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
        ).fetchone()
        return Versioned(json.loads(row[0]), (int(row[1]), 1)) if row else None

    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            exists = db.execute(
                "SELECT 1 FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
            ).fetchone()
            if not exists:
                self._put(kind, doc_id, doc, 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return not exists

    def replace_if(
        self, kind: str, doc_id: str, doc: JsonDict, version: tuple[int, int]
    ) -> bool:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT version FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
            ).fetchone()
            ok = row is not None and int(row[0]) == version[0]
            if ok:
                self._put(kind, doc_id, doc, version[0] + 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return ok

    def find_terms(
        self, kind: str, field: str, values: Sequence[str], size: int = 50
    ) -> list[JsonDict]:
        if not values:
            return []
        marks = ",".join("?" * len(values))
        rows = self._db.execute(
            f"SELECT DISTINCT d.body FROM terms t JOIN docs d ON d.kind = t.kind AND d.id = t.id"  # noqa: S608  # only placeholders are interpolated
            f" WHERE t.kind = ? AND t.field = ? AND t.value IN ({marks}) LIMIT ?",
            (kind, field, *values, size),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def all_docs(self, kind: str, size: int = 10_000) -> list[JsonDict]:
        rows = self._db.execute(
            "SELECT body FROM docs WHERE kind = ? ORDER BY id LIMIT ?", (kind, size)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def count(self, kind: str) -> int:
        return int(
            self._db.execute("SELECT COUNT(*) FROM docs WHERE kind = ?", (kind,)).fetchone()[0]
        )

    def refresh(self, kind: str) -> None:
        """Nothing to do: SQLite reads see committed writes at once."""

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


#: Fields the embedded store can look up by value (the keyword fields the pipeline queries).
_LOOKUP_FIELDS = (
    "story_id", "text_hash", "lsh_bands", "doc_id", "url", "topic_names", "rule", "replayed"
)


def _keyword_values(doc: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for field in _LOOKUP_FIELDS:
        value = doc.get(field)
        if isinstance(value, bool):
            # Stored as the search servers render booleans in a terms query.
            yield field, "true" if value else "false"
        elif isinstance(value, list | tuple):
            for v in value:
                yield field, v
        elif value is not None:
            yield field, value


def open_store(settings: SearchSettings, state_dir: Path) -> DocumentStore:
    """The store the settings name; the embedded one lives in ``state_dir``."""
    if settings.backend == "embedded":
        return SqliteStore(state_dir / "documents.sqlite")
    return SearchServerStore(settings)
