"""search.unavailable_wait_s also waits out a server that is up but not ready: after a restart
Elasticsearch answers 503 (no shard available) until its shards are allocated again. Found by
the fault test of a restart while a run waits; here without a server, on the retry rule."""

from __future__ import annotations

from typing import Any

import elasticsearch
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

from newsmon.config import SearchSettings
from newsmon.pipeline.store import SearchServerStore, StoreUnavailable
from newsmon.pipeline.store import server as io_search


def api_error(status: int) -> elasticsearch.ApiError:
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(),
                           duration=0.0, node=NodeConfig("http", "127.0.0.1", 9))
    return elasticsearch.ApiError("search_phase_execution_exception", meta=meta, body={})


def failing(times: int, status: int) -> Any:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise api_error(status)
        return "answered"

    return fn


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(io_search.time, "sleep", slept.append)
    return slept


def store(wait_s: float) -> SearchServerStore:
    return SearchServerStore(SearchSettings(backend="elasticsearch", url="http://127.0.0.1:9",
                                            unavailable_wait_s=wait_s))


def test_a_503_is_waited_out_when_told_to_wait(no_sleep: list[float]) -> None:
    assert store(60)._call(failing(3, 503)) == "answered"
    assert no_sleep == [1.0, 2.0, 4.0]


def test_without_waiting_a_503_fails_the_run_at_once(no_sleep: list[float]) -> None:
    with pytest.raises(StoreUnavailable, match="HTTP 503"):
        store(0)._call(failing(1, 503))
    assert no_sleep == []


def test_a_500_is_not_waited_for(no_sleep: list[float]) -> None:
    with pytest.raises(StoreUnavailable, match="HTTP 500"):
        store(60)._call(failing(1, 500))
    assert no_sleep == []
