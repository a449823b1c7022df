"""The SQLite state: cursors, seen marks and health survive a reopen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsmon.connectors.records import Cursor, Health
from newsmon.connectors.state import StateStore

NOW = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)


def test_state_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "connectors.sqlite"
    with StateStore(path) as store:
        store.mark_seen("feed-a", {"i1": ("r1", NOW)}, now=NOW,
                        cursor=Cursor(etag='"e"', last_modified="lm"))
        store.save_health(Health(source_id="feed-a", items_seen=1, last_success_at=NOW,
                                 next_due_at=NOW, disabled=True, disabled_reason="gone"))
    with StateStore(path) as store:
        assert store.cursor("feed-a") == Cursor(etag='"e"', last_modified="lm")
        seen = store.seen_revisions("feed-a", ["i1", "i2"])
        assert list(seen) == ["i1"] and seen["i1"].revision == "r1"
        assert seen["i1"].first_seen_at == NOW
        health = store.health("feed-a")
        assert health.items_seen == 1 and health.last_success_at == NOW and health.disabled
        assert store.all_health() == {"feed-a": health}


def test_seen_marks_are_per_source_and_keep_the_first_seen_time(tmp_path: Path) -> None:
    later = datetime(2024, 11, 26, tzinfo=UTC)
    with StateStore(tmp_path / "s.sqlite") as store:
        store.mark_seen("a", {"i1": ("r1", NOW)}, now=NOW)
        store.mark_seen("a", {"i1": ("r2", later)}, now=later)
        assert store.seen_revisions("a", ["i1"])["i1"].revision == "r2"
        assert store.seen_revisions("a", ["i1"])["i1"].first_seen_at == NOW
        assert store.seen_revisions("b", ["i1"]) == {}


def test_many_ids_are_looked_up_in_slices(tmp_path: Path) -> None:
    ids = {f"i{n}": ("r", NOW) for n in range(2_000)}
    with StateStore(tmp_path / "s.sqlite") as store:
        store.mark_seen("a", ids, now=NOW)
        assert len(store.seen_revisions("a", [*ids, "other"])) == 2_000
        assert store.seen_count("a") == 2_000


def test_unknown_sources_have_empty_state(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite") as store:
        assert store.cursor("x") == Cursor()
        assert store.health("x") == Health(source_id="x")


def test_enable_clears_the_disabled_flag(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite") as store:
        store.save_health(Health(source_id="x", disabled=True, disabled_reason="404",
                                 hard_failures=5, next_due_at=NOW))
        store.enable("x")
        health = store.health("x")
    assert not health.disabled and health.hard_failures == 0 and health.next_due_at is None


def test_a_state_file_from_before_body_hashes_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE cursors (source_id TEXT PRIMARY KEY, etag TEXT,"
               " last_modified TEXT, last_message_id INTEGER)")
    db.execute("INSERT INTO cursors VALUES ('a', '\"e\"', NULL, NULL)")
    db.commit()
    db.close()
    with StateStore(path) as store:
        assert store.cursor("a") == Cursor(etag='"e"')
        store.save_cursor("a", Cursor(etag='"e"', body_sha256="abc"))
        assert store.cursor("a").body_sha256 == "abc"


def test_items_gone_from_their_feed_are_pruned_after_the_retention(tmp_path: Path) -> None:
    day = timedelta(days=1)
    with StateStore(tmp_path / "s.sqlite") as store:
        store.mark_seen("a", {"old": ("r", NOW), "kept": ("r", NOW)}, now=NOW,
                        present=["old", "kept"])
        # 100 days later the feed still carries "kept" but no longer "old"
        later = NOW + 100 * day
        store.mark_seen("a", {}, now=later, present=["kept"])
        # a source never parsed keeps everything
        store.mark_seen("b", {"x": ("r", NOW)}, now=NOW)
        assert store.prune_seen(now=later, retention=90 * day) == 1
        assert set(store.seen_revisions("a", ["old", "kept"])) == {"kept"}
        assert store.seen_count("b") == 1
        assert store.last_prune_at() == later


def test_items_of_a_feed_answering_304_for_months_are_kept(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite") as store:
        store.mark_seen("a", {"i": ("r", NOW)}, now=NOW, present=["i"])
        assert store.prune_seen(now=NOW + timedelta(days=400), retention=timedelta(days=90)) == 0
