"""The store contract, on the embedded SQLite store and on every real search server."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from newsmon.pipeline.config import SearchSettings
from newsmon.pipeline.io_search import DocumentStore, SqliteStore, open_store


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


def test_sqlite_store_contract(tmp_path: Path) -> None:
    _contract(SqliteStore(tmp_path / "docs.sqlite"))


@pytest.fixture
def server_store(search_settings: SearchSettings) -> Iterator[DocumentStore]:
    store = open_store(search_settings, Path("unused"))
    yield store
    store.close()


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
