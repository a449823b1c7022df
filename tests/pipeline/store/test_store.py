"""The store contract, on the embedded SQLite store and on every real search server."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsmon.pipeline.store import DocumentStore, SqliteStore


def _doc(doc_id: str, story: str, bands: list[str]) -> dict[str, object]:
    return {"doc_id": doc_id, "story_id": story, "lsh_bands": bands, "text_hash": "h" + doc_id,
            "title": "t", "url": f"https://x.example/{doc_id}"}


def _contract(store: DocumentStore) -> None:
    store.setup()
    store.setup()  # idempotent
    docs = [(f"d{i}", _doc(f"d{i}", "s1" if i < 2 else f"s{i}", [f"b{i}", "shared"]))
            for i in range(4)]
    assert store.bulk_write("articles", docs) == []
    assert store.bulk_write("articles", docs) == []  # same ids: nothing new
    store.refresh("articles")
    assert store.count("articles") == 4
    found = {d["doc_id"] for d in store.find_terms("articles", "lsh_bands", ["b1", "b3"])}
    assert found == {"d1", "d3"}
    assert len(store.find_terms("articles", "lsh_bands", ["shared"])) == 4
    assert store.find_terms("articles", "story_id", []) == []

    alert = {"alert_id": "a1", "rule": "r", "notified": []}
    assert store.create("alerts", "a1", alert) is True
    assert store.create("alerts", "a1", alert) is False  # exactly one creator wins
    current = store.get("alerts", "a1")
    assert current is not None and current.source["rule"] == "r"
    assert store.replace_if("alerts", "a1", {**alert, "notified": ["console"]}, current.version)
    # A writer holding the old version loses instead of overwriting the newer document.
    assert not store.replace_if("alerts", "a1", alert, current.version)
    latest = store.get("alerts", "a1")
    assert latest is not None and latest.source["notified"] == ["console"]
    assert store.get("alerts", "missing") is None

    # Bulk creation: existing ids are left alone and reported as not created.
    many = [("a1", {**alert, "rule": "other"}), ("a2", alert), ("a3", alert)]
    assert store.create_many("alerts", many) == {"a2", "a3"}
    assert store.create_many("alerts", many) == set()
    kept = store.get("alerts", "a1")
    assert kept is not None and kept.source["rule"] == "r"


def test_sqlite_store_contract(tmp_path: Path) -> None:
    _contract(SqliteStore(tmp_path / "docs.sqlite"))


@pytest.mark.integration
def test_search_server_store_contract(server_store: DocumentStore) -> None:
    _contract(server_store)


@pytest.mark.integration
def test_mapping_rejection_is_a_failure_not_an_exception(server_store: DocumentStore) -> None:
    server_store.setup()
    # dynamic: strict refuses unknown fields: bad data for the dead letters, not a crash.
    failures = server_store.bulk_write("articles", [("bad", {"doc_id": "bad", "colour": "red"})])
    assert [f.doc_id for f in failures] == ["bad"]
    assert failures[0].status == 400


def _scan_contract(store: DocumentStore) -> None:
    store.setup()
    docs = [(f"a{i}", {"doc_id": f"a{i}", "story_id": "s", "topic_names": ["t1"] if i % 2 else [],
                       "published_at": f"2026-0{m}-1{i}T10:00:00Z", "title": "x"})
            for i, m in enumerate((1, 2, 2, 3))]
    assert store.bulk_write("articles", docs) == []
    store.refresh("articles")
    since, until = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    window = list(store.scan("articles", since=since, until=until))
    assert [d["doc_id"] for d in window] == ["a1", "a2"]  # oldest first, bounds [since, until)
    tagged = store.scan("articles", terms={"topic_names": ["t1"]}, fields=["doc_id"])
    assert [d for d in tagged] == [{"doc_id": "a1"}, {"doc_id": "a3"}]
    assert len(list(store.scan("articles"))) == 4


def test_sqlite_store_scan(tmp_path: Path) -> None:
    _scan_contract(SqliteStore(tmp_path / "docs.sqlite"))


@pytest.mark.integration
def test_search_server_store_scan(server_store: DocumentStore) -> None:
    _scan_contract(server_store)


def _newest_contract(store: DocumentStore) -> None:
    """A key shared by more documents than the look-up returns: with ``newest_by`` it returns
    the newest, whatever order they were written in (grouping looks up a common story key and
    must find last hour's copies, not the first ones the run ever wrote)."""
    store.setup()
    order = [3, 0, 5, 1, 4, 2]
    docs = [(f"n{i}", {**_doc(f"n{i}", f"s{i}", ["common"]),
                       "first_seen_at": f"2026-11-0{i + 1}T10:00:00Z"}) for i in order]
    assert store.bulk_write("articles", docs) == []
    store.refresh("articles")
    newest = store.find_terms("articles", "lsh_bands", ["common"], size=2, fields=["doc_id"],
                              newest_by="first_seen_at")
    assert [d["doc_id"] for d in newest] == ["n5", "n4"]


def test_sqlite_store_returns_the_newest(tmp_path: Path) -> None:
    _newest_contract(SqliteStore(tmp_path / "docs.sqlite"))


@pytest.mark.integration
def test_search_server_store_returns_the_newest(server_store: DocumentStore) -> None:
    _newest_contract(server_store)


def test_the_elasticsearch_serializers_write_and_read_what_the_standard_library_does() -> None:
    """orjson behind the client (client._orjson_serializers) changes the cost, not the bytes:
    each value below is written byte for byte as the client's own serializer writes it, and
    what orjson refuses (a lone surrogate) falls back to it instead of failing the request."""
    from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

    from newsmon.pipeline.store.client import _orjson_serializers

    ours = _orjson_serializers()
    values: list[object] = [
        {"title": "Київ: «mañana»\u2028", "n": [1, 2.5, -0.0, None, True], "big": 2**40},
        {"at": datetime(2026, 12, 5, 1, 2, 3, 456, tzinfo=UTC), 7: "int key"},
        {"text": "half a pair \ud800 of surrogates"},
    ]
    for value in values:
        assert ours["application/json"].dumps(value) == JsonSerializer().dumps(value)
        encoded = JsonSerializer().dumps(value)
        assert ours["application/json"].loads(encoded) == JsonSerializer().loads(encoded)
    assert ours["application/x-ndjson"].dumps(values) == NdjsonSerializer().dumps(values)
    lines = NdjsonSerializer().dumps(values[:2])
    assert ours["application/x-ndjson"].loads(lines) == NdjsonSerializer().loads(lines)
