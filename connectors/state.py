"""Per-source state in one SQLite file: cursors, seen items and health.

Tables:

``cursors``  what to send next time: ETag, Last-Modified, the last Telegram message id.
``seen``     item_id -> revision (and when the item was first seen) of every item *published*;
             it is written only after the publisher returned, so a crash or a Kafka outage in
             between means the item is published again, never lost. ``last_present_at`` is
             the last time the item was in a document of its source: rows of items gone from
             their feed for longer than the retention are pruned (see ``prune_seen``).
``parsed``   per source, when its last complete document was parsed.
``meta``     when the seen marks were last pruned.
``health``   last success, last error and its kind, consecutive failures, items seen, time of
             the last new item, last HTTP status, next due time, disabled flag.

The store is shared by the poller's worker threads (they read ``seen`` to dedup before
fetching full text); one connection behind a lock is plenty for a few thousand sources, and
WAL mode lets ``newsmon sources`` read while a poller writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsmon.closing import Closing
from newsmon.connectors.fields import MAX_STORED_INT
from newsmon.connectors.records import (
    Cursor,
    Health,
    SeenRevision,
    storable_cursor,
    storable_id,
    storable_int,
    storable_text,
)
from newsmon.connectors.websub.records import Subscription
from newsmon.models import DeadLetter

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    source_id TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    last_message_id INTEGER,
    body_sha256 TEXT
);
CREATE TABLE IF NOT EXISTS seen (
    source_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    revision TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_present_at TEXT,
    PRIMARY KEY (source_id, item_id)
);
CREATE TABLE IF NOT EXISTS parsed (
    source_id TEXT PRIMARY KEY,
    last_parsed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS health (
    source_id TEXT PRIMARY KEY,
    last_poll_at TEXT,
    last_success_at TEXT,
    last_error TEXT,
    last_error_kind TEXT,
    last_error_at TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    hard_failures INTEGER NOT NULL DEFAULT 0,
    items_seen INTEGER NOT NULL DEFAULT 0,
    parse_errors INTEGER NOT NULL DEFAULT 0,
    last_new_item_at TEXT,
    last_status INTEGER,
    next_due_at TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT
);
CREATE TABLE IF NOT EXISTS websub (
    source_id TEXT PRIMARY KEY,
    subscription TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    dl_id TEXT PRIMARY KEY,
    letter TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
);
"""
#: Columns added after the first release of a table: (table, column, type), added on open.
_ADDED_COLUMNS = (("cursors", "body_sha256", "TEXT"), ("seen", "last_present_at", "TEXT"))


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


_UPSERT_CURSOR = (
    "INSERT INTO cursors (source_id, etag, last_modified, last_message_id, body_sha256)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT(source_id) DO UPDATE SET"
    " etag = excluded.etag, last_modified = excluded.last_modified,"
    " last_message_id = excluded.last_message_id, body_sha256 = excluded.body_sha256"
)


def _cursor_row(source_id: str, c: Cursor) -> tuple[str, str | None, str | None, int | None,
                                                   str | None]:
    # The runner checks (and reports) first; this keeps any other caller from storing half a
    # cursor or failing on one field.
    c, _ = storable_cursor(c, Cursor())
    return (source_id, c.etag, c.last_modified, c.last_message_id, c.body_sha256)


_HEALTH_COLUMNS = tuple(Health.model_fields)
_TIME_COLUMNS = frozenset(
    {"last_poll_at", "last_success_at", "last_error_at", "last_new_item_at", "next_due_at"}
)


class StateStore(Closing):
    """SQLite-backed state; safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # isolation_level=None: transactions are explicit (see _tx), so a batch of seen marks
        # is one atomic commit.
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        for table, column, kind in _ADDED_COLUMNS:
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()


    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- cursors ------------------------------------------------------------------------

    def cursor(self, source_id: str) -> Cursor:
        with self._lock:
            row = self._db.execute(
                "SELECT etag, last_modified, last_message_id, body_sha256 FROM cursors"
                " WHERE source_id = ?",
                (source_id,),
            ).fetchone()
        if row is None:
            return Cursor()
        return Cursor(
            etag=row[0], last_modified=row[1], last_message_id=row[2], body_sha256=row[3]
        )

    def save_cursor(self, source_id: str, cursor: Cursor) -> None:
        with self._tx() as db:
            db.execute(_UPSERT_CURSOR, _cursor_row(source_id, cursor))

    # --- seen items -----------------------------------------------------------------------

    def seen_revisions(self, source_id: str, item_ids: Iterable[str]) -> dict[str, SeenRevision]:
        """The stored revision of each of ``item_ids`` that was published. An id the table
        cannot hold (see :func:`seen_mark_problem`) was never published: not looked up."""
        ids = [i for i in dict.fromkeys(item_ids) if storable_id(i)]
        out: dict[str, SeenRevision] = {}
        with self._lock:
            # SQLite limits bound parameters (999 in old builds): query in slices.
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                # Only "?" placeholders are formatted into the statement.
                query = (
                    "SELECT item_id, revision, first_seen_at FROM seen"  # noqa: S608
                    f" WHERE source_id = ? AND item_id IN ({marks})"
                )
                rows = self._db.execute(query, (source_id, *chunk)).fetchall()
                for item_id, revision, first_seen in rows:
                    out[item_id] = SeenRevision(
                        revision=revision, first_seen_at=datetime.fromisoformat(first_seen)
                    )
        return out

    def mark_seen(
        self,
        source_id: str,
        revisions: Mapping[str, tuple[str, datetime]],
        *,
        now: datetime,
        cursor: Cursor | None = None,
        present: Iterable[str] | None = None,
    ) -> None:
        """Record published items (item_id -> (revision, first_seen_at)) and, in the same
        transaction, the cursor that goes with them: either both are stored or neither.

        ``present``: the ids of every item of a complete document just parsed (published or
        not); they are kept from pruning, and the source counts as parsed ``now``.
        """
        stamp = _ts(now)
        with self._tx() as db:
            db.executemany(
                "INSERT INTO seen (source_id, item_id, revision, first_seen_at, updated_at,"
                " last_present_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(source_id, item_id) DO UPDATE SET"
                " revision = excluded.revision, updated_at = excluded.updated_at,"
                " last_present_at = excluded.last_present_at",
                [
                    (source_id, item_id, rev, _ts(first), stamp, stamp)
                    for item_id, (rev, first) in revisions.items()
                ],
            )
            if present is not None:
                # An id the table cannot hold is in no row: nothing to keep from pruning.
                ids = [i for i in dict.fromkeys(present) if storable_id(i)]
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    # Only "?" placeholders are formatted into the statement.
                    db.execute(
                        "UPDATE seen SET last_present_at = ?"  # noqa: S608
                        f" WHERE source_id = ? AND item_id IN ({marks})",
                        (stamp, source_id, *chunk),
                    )
                db.execute(
                    "INSERT INTO parsed (source_id, last_parsed_at) VALUES (?, ?)"
                    " ON CONFLICT(source_id) DO UPDATE SET"
                    " last_parsed_at = excluded.last_parsed_at",
                    (source_id, stamp),
                )
            if cursor is not None:
                db.execute(_UPSERT_CURSOR, _cursor_row(source_id, cursor))

    # --- dead letters -------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> int:
        """Park what a poll could not turn into items. Ids derive from content, so the same
        failure met on every poll is one letter (its latest error and time kept). Returns how
        many are new."""
        with self._tx() as db:
            new = 0
            for letter in letters:
                known = db.execute("SELECT 1 FROM dead_letters WHERE dl_id = ?",
                                   (letter.dl_id,)).fetchone()
                new += known is None
                db.execute(
                    "INSERT INTO dead_letters (dl_id, letter) VALUES (?, ?) ON CONFLICT(dl_id)"
                    " DO UPDATE SET letter = excluded.letter, published = 0",
                    (letter.dl_id, letter.model_dump_json()),
                )
        return new

    def dead_letters(self, *, unpublished_only: bool = False) -> list[DeadLetter]:
        query = "SELECT letter FROM dead_letters"
        if unpublished_only:
            query += " WHERE published = 0"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY dl_id").fetchall()
        return [DeadLetter.model_validate_json(row[0]) for row in rows]

    def mark_dead_letters_published(self, dl_ids: Iterable[str]) -> None:
        with self._tx() as db:
            db.executemany("UPDATE dead_letters SET published = 1 WHERE dl_id = ?",
                           [(i,) for i in dl_ids])

    def prune_seen(self, *, now: datetime, retention: timedelta) -> int:
        """Forget items that have been absent from their source's documents for longer than
        ``retention``; returns how many. An item still in the latest document of its source
        is never pruned however old (a feed served with 304 for months keeps its items), and a
        source never parsed keeps all of its rows. A pruned item that comes back later is
        published again as new: the retention should exceed how long feeds keep items."""
        cutoff = _ts(now - retention)
        with self._tx() as db:
            deleted = db.execute(
                "DELETE FROM seen WHERE COALESCE(last_present_at, updated_at) < ?"
                " AND COALESCE(last_present_at, updated_at) < COALESCE("
                "   (SELECT last_parsed_at FROM parsed WHERE parsed.source_id = seen.source_id),"
                "   '')",
                (cutoff,),
            ).rowcount
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_prune_at', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (_ts(now),),
            )
        return int(deleted)

    def last_prune_at(self) -> datetime | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'last_prune_at'").fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def seen_count(self, source_id: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM seen WHERE source_id = ?", (source_id,)
            ).fetchone()
        return int(row[0])

    # --- health ---------------------------------------------------------------------------

    def health(self, source_id: str) -> Health:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            try:
                row = self._db.execute(
                    "SELECT * FROM health WHERE source_id = ?", (source_id,)
                ).fetchone()
            finally:
                self._db.row_factory = None
        if row is None:
            return Health(source_id=source_id)
        data = {k: row[k] for k in _HEALTH_COLUMNS}
        for name in _TIME_COLUMNS:
            data[name] = _dt(data[name])
        data["disabled"] = bool(data["disabled"])
        return Health.model_validate(data)

    def all_health(self) -> dict[str, Health]:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT source_id FROM health").fetchall()]
        return {source_id: self.health(source_id) for source_id in ids}

    def save_health(self, health: Health) -> None:
        """Store ``health``. Its texts (errors quote what a server sent) are made storable
        and cut (:func:`storable_text`) and a status code out of range is dropped, so a
        hostile answer cannot make the health of its source unwritable."""
        values = health.model_dump()
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = storable_text(value)
            elif isinstance(value, int) and not isinstance(value, bool) and not storable_int(
                    value):
                values[name] = None if name == "last_status" else MAX_STORED_INT
        for name in _TIME_COLUMNS:
            values[name] = _ts(values[name])
        values["disabled"] = int(values["disabled"])
        cols = ", ".join(_HEALTH_COLUMNS)
        marks = ", ".join(f":{c}" for c in _HEALTH_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _HEALTH_COLUMNS if c != "source_id")
        with self._tx() as db:
            db.execute(
                f"INSERT INTO health ({cols}) VALUES ({marks})"  # noqa: S608 - fixed names
                f" ON CONFLICT(source_id) DO UPDATE SET {updates}",
                values,
            )

    def enable(self, source_id: str) -> None:
        """Re-enable a source disabled after repeated hard failures (an operator's decision)."""
        current = self.health(source_id)
        self.save_health(
            current.model_copy(
                update={"disabled": False, "disabled_reason": None, "hard_failures": 0,
                        "next_due_at": None}
            )
        )

    # --- WebSub subscriptions (connectors/websub) ----------------------------------------

    def subscription(self, source_id: str) -> Subscription | None:
        with self._lock:
            row = self._db.execute("SELECT subscription FROM websub WHERE source_id = ?",
                                   (source_id,)).fetchone()
        return None if row is None else Subscription.model_validate_json(row[0])

    def subscriptions(self) -> dict[str, Subscription]:
        with self._lock:
            rows = self._db.execute("SELECT subscription FROM websub").fetchall()
        subs = (Subscription.model_validate_json(row[0]) for row in rows)
        return {sub.source_id: sub for sub in subs}

    def change_subscription(
        self, source_id: str, change: Callable[[Subscription | None], Subscription | None]
    ) -> Subscription | None:
        """Replace a source's subscription by ``change(current)`` in one transaction (None
        deletes it), so the callback's concurrent requests and the maintenance never undo each
        other's counts. Returns what is stored now."""
        with self._tx() as db:
            row = db.execute("SELECT subscription FROM websub WHERE source_id = ?",
                             (source_id,)).fetchone()
            current = None if row is None else Subscription.model_validate_json(row[0])
            new = change(current)
            if new is None:
                db.execute("DELETE FROM websub WHERE source_id = ?", (source_id,))
            else:
                db.execute(
                    "INSERT INTO websub (source_id, subscription) VALUES (?, ?)"
                    " ON CONFLICT(source_id) DO UPDATE SET subscription = excluded.subscription",
                    (source_id, new.model_dump_json()),
                )
        return new
