"""Index layout on the real servers (monthly article indices behind an alias, templates,
language subfields, idempotent setup) and the bulk writer's retry rules (pure)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsmon.config import SearchSettings
from newsmon.pipeline.store import (
    BulkAction,
    ItemResult,
    SearchServerStore,
    StoreSetupError,
    StoreUnavailable,
    bulk_with_retry,
)
from newsmon.pipeline.store.mappings import MAPPINGS, index_template, monthly_index, replicas_for

ROOT = Path(__file__).resolve().parents[3]


# --- bulk retries (pure) -------------------------------------------------------------------


class FakeServer:
    """Answers bulk requests from a script: per call, the statuses of the documents sent."""

    def __init__(self, script: Sequence[dict[str, int]]) -> None:
        self.script = list(script)
        self.calls: list[list[str]] = []

    def __call__(self, actions: Sequence[BulkAction]) -> list[ItemResult]:
        self.calls.append([a.doc_id for a in actions])
        statuses = self.script.pop(0) if self.script else {}
        return [ItemResult(a.doc_id, statuses.get(a.doc_id, 201),
                           "boom" if statuses.get(a.doc_id, 201) >= 300 else "")
                for a in actions]


def _actions(n: int) -> list[BulkAction]:
    return [BulkAction(f"d{i}", "idx", {"n": i}) for i in range(n)]


def test_only_failed_documents_are_retried_with_capped_backoff() -> None:
    server = FakeServer([{"d1": 429, "d3": 503}, {"d3": 429}, {}])
    sleeps: list[float] = []
    failures = bulk_with_retry(server, _actions(5), chunk_size=100, max_retries=5,
                               initial_backoff_s=1, max_backoff_s=1.5, sleep=sleeps.append)
    assert failures == []
    assert server.calls == [["d0", "d1", "d2", "d3", "d4"], ["d1", "d3"], ["d3"]]
    assert sleeps == [1, 1.5]  # 1, 2 capped at 1.5


def test_rejected_documents_are_failures_and_not_retried() -> None:
    server = FakeServer([{"d0": 400}, {"d2": 429}, {}])
    failures = bulk_with_retry(server, _actions(3), chunk_size=2, max_retries=3,
                               sleep=lambda _: None)
    assert [(f.doc_id, f.status) for f in failures] == [("d0", 400)]
    # chunks of 2: [d0, d1], then [d2] (429) and its retry
    assert server.calls == [["d0", "d1"], ["d2"], ["d2"]]


def test_documents_failing_transiently_for_good_raise_store_unavailable() -> None:
    server = FakeServer([{"d0": 503}] * 10)
    with pytest.raises(StoreUnavailable, match="after 2 retries"):
        bulk_with_retry(server, _actions(1), chunk_size=10, max_retries=2, sleep=lambda _: None)
    assert len(server.calls) == 3


def test_monthly_index_follows_published_at() -> None:
    assert monthly_index("p", "articles", {"published_at": "2026-11-20T12:00:00Z"}) == (
        "p-articles-2026.11")
    assert monthly_index("p", "articles", {"first_seen_at": "2025-01-02T00:00:00Z"}) == (
        "p-articles-2025.01")
    assert monthly_index("p", "articles", {}) == "p-articles-undated"


# --- deploy/search is generated from mappings.py ---------------------------------------------


def test_deploy_search_templates_are_in_sync_with_mappings(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "search", "export", "--out", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    shipped = sorted(p.name for p in (ROOT / "deploy" / "search").glob("*.json"))
    assert generated == shipped, "run `newsmon search export` and commit deploy/search/"
    for name in generated:
        assert (tmp_path / name).read_text() == (ROOT / "deploy" / "search" / name).read_text(), (
            f"deploy/search/{name} is stale: run `newsmon search export`")
    assert {n.split(".")[0] for n in generated} >= set(MAPPINGS)


# --- on the real servers -------------------------------------------------------------------


@pytest.fixture
def store(search_settings: SearchSettings) -> Iterator[SearchServerStore]:
    s = SearchServerStore(search_settings)
    yield s
    s.close()
    for kind in MAPPINGS:  # templates outlive the indices the fixture deletes
        httpx.delete(f"{search_settings.url}/_index_template/{search_settings.index_prefix}-{kind}",
                     timeout=30)


def _state(settings: SearchSettings) -> dict[str, Any]:
    """What setup controls: templates, mappings and aliases under the test's prefix."""
    url, prefix = settings.url, settings.index_prefix
    templates = httpx.get(f"{url}/_index_template/{prefix}-*", timeout=30).json()
    mappings = httpx.get(f"{url}/{prefix}-*/_mapping", timeout=30).json()
    aliases = httpx.get(f"{url}/{prefix}-*/_alias", timeout=30).json()
    return {
        "templates": sorted((t["name"], json.dumps(t["index_template"], sort_keys=True))
                            for t in templates["index_templates"]),
        "mappings": json.dumps(mappings, sort_keys=True),
        "aliases": json.dumps(aliases, sort_keys=True),
    }


@pytest.mark.integration
def test_setup_twice_gives_the_same_state(store: SearchServerStore,
                                          search_settings: SearchSettings) -> None:
    store.setup()
    first = _state(search_settings)
    store.setup()
    assert _state(search_settings) == first
    names = {name for name, _ in first["templates"]}
    assert names == {f"{search_settings.index_prefix}-{k}" for k in MAPPINGS}
    # a fresh client (another process, the next deploy) agrees too
    again = SearchServerStore(search_settings)
    again.setup()
    again.close()
    assert _state(search_settings) == first


@pytest.mark.integration
def test_language_subfields_only_where_the_server_has_the_analyzers(
    store: SearchServerStore, search_settings: SearchSettings
) -> None:
    store.setup()
    alias = f"{search_settings.index_prefix}-articles"
    mapping = httpx.get(f"{search_settings.url}/{alias}/_mapping", timeout=30).json()
    props = next(iter(mapping.values()))["mappings"]["properties"]
    if search_settings.backend == "opensearch":
        # OpenSearch ships analysis-common: German, Russian... subfields are there.
        assert {"de", "en", "fr", "ru", "it", "es"} <= set(store.languages)
        assert props["text"]["fields"]["de"] == {"type": "text", "analyzer": "german"}
        docs = [("g1", {"doc_id": "g1", "published_at": "2026-11-02T00:00:00Z",
                        "text": "Die Häuser der Bundeswehr", "title": "Häuser"})]
        assert store.bulk_write("articles", docs) == []
        store.refresh("articles")
        # the german analyzer stems Häuser -> haus, so a search for "Haus" finds it
        body = {"query": {"match": {"text.de": "Haus"}}}
        res = httpx.post(f"{search_settings.url}/{alias}/_search", json=body, timeout=30).json()
        assert [h["_id"] for h in res["hits"]["hits"]] == ["g1"]
    else:
        # The Maven Central Elasticsearch build has no language analyzers: standard only.
        assert store.languages == ()
        assert "fields" not in props["text"]
    # operators may switch them off (a third of the indexing work): the next setup follows
    plain = SearchServerStore(search_settings.model_copy(update={"language_subfields": False}))
    plain.setup()
    template = httpx.get(f"{search_settings.url}/_index_template/{alias}", timeout=30).json()
    mappings = template["index_templates"][0]["index_template"]["template"]["mappings"]
    assert plain.languages == () and "fields" not in mappings["properties"]["text"]


@pytest.mark.integration
def test_articles_go_to_monthly_indices_and_read_through_the_alias(
    store: SearchServerStore, search_settings: SearchSettings
) -> None:
    store.setup()
    prefix, url = search_settings.index_prefix, search_settings.url
    docs = [
        ("n1", {"doc_id": "n1", "story_id": "s1", "published_at": "2026-10-31T23:59:59Z"}),
        ("n2", {"doc_id": "n2", "story_id": "s1", "published_at": "2026-11-01T00:00:00Z"}),
        ("n3", {"doc_id": "n3", "story_id": "s2", "published_at": "2025-01-15T08:00:00Z"}),
    ]
    assert store.bulk_write("articles", docs) == []
    store.refresh("articles")
    where = {h["_id"]: h["_index"] for h in httpx.post(
        f"{url}/{prefix}-articles/_search", json={"size": 10}, timeout=30).json()["hits"]["hits"]}
    assert where == {"n1": f"{prefix}-articles-2026.10", "n2": f"{prefix}-articles-2026.11",
                     "n3": f"{prefix}-articles-2025.01"}
    # every read the pipeline does works across the monthly indices
    assert {d["doc_id"] for d in store.find_terms("articles", "story_id", ["s1"])} == {"n1", "n2"}
    got = store.get("articles", "n3")
    assert got is not None and got.source["story_id"] == "s2"
    assert store.get("articles", "missing") is None
    assert store.count("articles") == 3
    # the same document with a date in another month overwrites its copy: no second one
    moved = [("n1", {"doc_id": "n1", "story_id": "s1", "published_at": "2026-12-05T00:00:00Z"})]
    assert store.bulk_write("articles", moved) == []
    store.refresh("articles")
    assert store.count("articles") == 3
    got = store.get("articles", "n1")
    assert got is not None and got.source["published_at"] == "2026-12-05T00:00:00Z"
    # an index made by the first write of a month got the template (strict mapping, alias)
    failures = store.bulk_write("articles", [("x", {"doc_id": "x", "colour": "red",
                                                    "published_at": "2027-03-01T00:00:00Z"})])
    assert [f.status for f in failures] == [400]
    aliases = httpx.get(f"{url}/{prefix}-articles-2027.03/_alias", timeout=30).json()
    assert f"{prefix}-articles" in aliases[f"{prefix}-articles-2027.03"]["aliases"]


@pytest.mark.integration
def test_setup_refuses_the_old_single_index_layout(
    store: SearchServerStore, search_settings: SearchSettings
) -> None:
    httpx.put(f"{search_settings.url}/{search_settings.index_prefix}-articles",
              timeout=30).raise_for_status()
    with pytest.raises(StoreSetupError, match="old single-index layout"):
        store.setup()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["elasticsearch", "opensearch"])
def test_lost_connection_raises_store_unavailable(backend: str) -> None:
    settings = SearchSettings(backend=backend,  # type: ignore[arg-type]
                              url=f"http://127.0.0.1:{_closed_port()}", request_timeout_s=2,
                              index_prefix="gone")
    store = SearchServerStore(settings)
    with pytest.raises(StoreUnavailable):
        store.bulk_write("alerts", [("a", {"alert_id": "a"})])
    with pytest.raises(StoreUnavailable):
        store.setup()


def test_templates_use_only_the_common_apis() -> None:
    # Composable templates with priority, settings, mappings, aliases and _meta: the subset
    # Elasticsearch 8, 9 and OpenSearch 2 all accept.
    body = index_template("p", "articles", ("de",))
    assert set(body) == {"index_patterns", "priority", "template", "_meta"}
    assert set(body["template"]) == {"settings", "mappings", "aliases"}
    assert body["index_patterns"] == ["p-articles-*"]
    assert body["template"]["aliases"] == {"p-articles": {}}


class _FakeClient:
    """Records the searches the store makes; answers with no hits."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def search(self, *, index: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.sizes.append(len(body["query"]["ids"]["values"]))
        return {"hits": {"hits": []}}


def test_location_lookup_stays_under_the_result_window() -> None:
    # A search may return at most 10,000 hits: a big bulk write must look its ids up in parts.
    store = SearchServerStore(SearchSettings(backend="elasticsearch",
                                             url="http://127.0.0.1:9", index_prefix="p"))
    fake = _FakeClient()
    store.client = fake
    assert store._locations("articles", [f"d{i}" for i in range(12_345)]) == {}
    assert fake.sizes == [1000] * 12 + [345]


@pytest.mark.integration
def test_setup_on_a_set_up_server_only_reads(store: SearchServerStore,
                                             search_settings: SearchSettings) -> None:
    store.setup()
    again = SearchServerStore(search_settings)
    assert again._already_set_up() and again.languages == store.languages
    # something missing or different: the full path runs and repairs it
    url, prefix = search_settings.url, search_settings.index_prefix
    httpx.delete(f"{url}/{prefix}-dead-letters", timeout=30).raise_for_status()
    assert not SearchServerStore(search_settings)._already_set_up()
    SearchServerStore(search_settings).setup()
    assert httpx.head(f"{url}/{prefix}-dead-letters", timeout=30).status_code == 200
    httpx.put(f"{url}/_index_template/{prefix}-alerts", timeout=30, json={
        "index_patterns": [f"{prefix}-alerts"], "priority": 200,
        "template": {"mappings": {"properties": {"rule": {"type": "keyword"}}}}})
    assert not SearchServerStore(search_settings)._already_set_up()
    SearchServerStore(search_settings).setup()
    assert SearchServerStore(search_settings)._already_set_up()


def test_replicas_follow_the_data_nodes() -> None:
    assert [replicas_for(n) for n in (1, 2, 3, 7)] == [0, 1, 1, 1]
    assert index_template("p", "alerts", replicas=1)["template"]["settings"] == {
        "number_of_shards": 1, "number_of_replicas": 1}


@pytest.mark.integration
def test_setup_on_one_node_chooses_no_replica(store: SearchServerStore,
                                              search_settings: SearchSettings) -> None:
    """A replica on a single node could never be placed: the indices would stay yellow.
    (Three data nodes, one replica: tests/faults/test_cluster_search.py.)"""
    store.setup(full=True)
    assert (store.data_nodes, store.replicas) == (1, 0)
    found = httpx.get(f"{search_settings.url}/{search_settings.index_prefix}-*/_settings/"
                      "index.number_of_replicas", timeout=30).json()
    assert found and {body["settings"]["index"]["number_of_replicas"]
                      for body in found.values()} == {"0"}
