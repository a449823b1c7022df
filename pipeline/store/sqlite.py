"""The embedded default: a SQLite file behind the store contract."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsmon.pipeline.store.base import DocumentStore, JsonDict, Versioned, parse_time, project
from newsmon.pipeline.store.bulk import BulkFailure
from newsmon.pipeline.store.mappings import TIME_FIELDS


def _in_window(doc: Mapping[str, Any], field: str, since: datetime | None,
               until: datetime | None) -> bool:
    raw = doc.get(field)
    if not raw:
        return since is None and until is None
    try:
        stamp = parse_time(raw)
    except (TypeError, ValueError):
        return False
    return (since is None or stamp >= since) and (until is None or stamp < until)


def _matches_terms(doc: Mapping[str, Any], terms: Mapping[str, Sequence[str]]) -> bool:
    for field, wanted in terms.items():
        value = doc.get(field)
        values = value if isinstance(value, list | tuple) else [value]
        if not {str(v) for v in values} & {str(w) for w in wanted}:
            return False
    return True



class SqliteStore(DocumentStore):
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
            # WAL with synchronous=NORMAL survives a crash of the process (what the embedded
            # default must survive) and skips an fsync per transaction.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, version INTEGER,"
                " body TEXT, PRIMARY KEY (kind, id))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS terms (kind TEXT, field TEXT, value TEXT, id TEXT)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS terms_idx ON terms (kind, field, value)")
            db.execute("CREATE INDEX IF NOT EXISTS terms_doc_idx ON terms (kind, id)")
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

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, its lock taken at once (BEGIN IMMEDIATE): committed at the
        end, rolled back on any exception."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _version(db: sqlite3.Connection, kind: str, doc_id: str) -> int | None:
        row = db.execute(
            "SELECT version FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
        ).fetchone()
        return None if row is None else int(row[0])

    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]:
        with self._write() as db:
            for doc_id, doc in docs:
                stored = self._version(db, kind, doc_id)
                self._put(kind, doc_id, doc, 1 if stored is None else stored + 1)
        return []

    def get(self, kind: str, doc_id: str) -> Versioned | None:
        row = self._db.execute(
            "SELECT body, version FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
        ).fetchone()
        return Versioned(json.loads(row[0]), (int(row[1]), 1)) if row else None

    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool:
        with self._write() as db:
            exists = self._version(db, kind, doc_id) is not None
            if not exists:
                self._put(kind, doc_id, doc, 1)
        return not exists

    def delete(self, kind: str, doc_id: str) -> bool:
        with self._write() as db:
            gone = db.execute("DELETE FROM docs WHERE kind = ? AND id = ?",
                              (kind, doc_id)).rowcount
            db.execute("DELETE FROM terms WHERE kind = ? AND id = ?", (kind, doc_id))
        return bool(gone)

    def replace_if(
        self, kind: str, doc_id: str, doc: JsonDict, version: tuple[int, int]
    ) -> bool:
        with self._write() as db:
            ok = self._version(db, kind, doc_id) == version[0]
            if ok:
                self._put(kind, doc_id, doc, version[0] + 1)
        return ok

    def _find_terms(self, kind: str, field: str, values: Sequence[str], size: int,
                    fields: Sequence[str] | None, newest_by: str | None) -> list[JsonDict]:
        marks = ",".join("?" * len(values))
        order: tuple[str, ...] = ()
        sql = (f"SELECT DISTINCT d.body FROM terms t JOIN docs d ON d.kind = t.kind AND d.id = t.id"  # noqa: S608  # only placeholders are interpolated
               f" WHERE t.kind = ? AND t.field = ? AND t.value IN ({marks})")
        if newest_by is not None:
            sql += " ORDER BY json_extract(d.body, ?) DESC"
            order = ("$." + newest_by,)
        rows = self._db.execute(f"{sql} LIMIT ?", (kind, field, *values, *order, size)).fetchall()
        return [project(json.loads(r[0]), fields) for r in rows]

    def _scan(self, kind: str, since: datetime | None, until: datetime | None,
              terms: Mapping[str, Sequence[str]],
              fields: Sequence[str] | None) -> Iterator[JsonDict]:
        path = "$." + TIME_FIELDS[kind]
        sql = "SELECT body FROM docs WHERE kind = ?"
        args: list[str] = [kind]
        # Stored times are UTC ISO 8601 (models.UtcDatetime), so their first 19 characters
        # compare as text; the exact bounds are applied after parsing.
        if since is not None:
            sql += " AND substr(json_extract(body, ?), 1, 19) >= ?"
            args += [path, f"{since.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"]
        if until is not None:
            sql += " AND substr(json_extract(body, ?), 1, 19) <= ?"
            args += [path, f"{until.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"]
        sql += " ORDER BY json_extract(body, ?), id"
        rows = self._db.execute(sql, (*args, path)).fetchall()
        for (body,) in rows:
            doc = json.loads(body)
            windowed = since is not None or until is not None
            if windowed and not _in_window(doc, TIME_FIELDS[kind], since, until):
                continue
            if terms and not _matches_terms(doc, terms):
                continue
            yield project(doc, fields)

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
    "story_id", "text_hash", "lsh_bands", "story_keys", "doc_id", "url", "topic_names", "rule",
    "replayed", "pending", "kind", "topic", "alert_id",
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

