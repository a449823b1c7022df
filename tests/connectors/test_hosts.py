"""Politeness per host: requests in flight, spacing, and one 429 throttling every source of its
host. The gate alone, then the poller against a local server."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from newsmon.connectors.base import Defaults
from newsmon.connectors.hosts import DEFAULT_COOLDOWN_S, MAX_COOLDOWN_S, HostGate, HostLimit
from newsmon.connectors.publisher import ListPublisher
from tests.connectors.feeds import Entry, rss
from tests.connectors.server import LocalServer, Reply, Request
from tests.connectors.test_runner import Clock, feed_source, make_config, poller

pytestmark = pytest.mark.timeout(60)


def run_requests(gate: HostGate, hosts: list[str], hold_s: float) -> tuple[int, list[float]]:
    """Send one request per entry of ``hosts`` at once; return the most in flight to the
    first host and the start times."""
    lock = threading.Lock()
    in_flight = peak = 0
    starts: list[float] = []

    def one(host: str) -> None:
        nonlocal in_flight, peak
        with gate.request(host):
            with lock:
                starts.append(time.monotonic())
                if host == hosts[0]:
                    in_flight += 1
                    peak = max(peak, in_flight)
            time.sleep(hold_s)
            with lock:
                if host == hosts[0]:
                    in_flight -= 1

    threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return peak, sorted(starts)


def test_requests_in_flight_to_one_host_are_bounded() -> None:
    gate = HostGate(HostLimit(concurrency=2))
    peak, _ = run_requests(gate, ["news.example"] * 8, hold_s=0.05)
    assert peak == 2


def test_other_hosts_do_not_wait_for_a_busy_one() -> None:
    gate = HostGate(HostLimit(concurrency=1))
    started = time.monotonic()
    run_requests(gate, ["a.example", "b.example", "c.example", "d.example"], hold_s=0.2)
    assert time.monotonic() - started < 0.6  # in parallel, not 4 x 0.2 s one after the other


def test_requests_to_one_host_are_spaced() -> None:
    gate = HostGate(HostLimit(concurrency=8), {"t.me": HostLimit(concurrency=8, interval_s=0.1)})
    _, starts = run_requests(gate, ["t.me"] * 4, hold_s=0.0)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.09
    _, starts = run_requests(gate, ["other.example"] * 4, hold_s=0.0)
    assert starts[-1] - starts[0] < 0.1  # the spacing is t.me's only


def test_host_names_are_matched_without_case() -> None:
    gate = HostGate(hosts={"t.me": HostLimit(interval_s=5)})
    assert gate.limit("T.ME").interval_s == 5
    gate.cool_down("T.Me", 30)
    assert 29 < gate.cooldown_left("t.me") <= 30


def test_cooldown_length() -> None:
    now = [100.0]
    gate = HostGate(now=lambda: now[0])
    assert gate.cooldown_left("x.example") == 0
    gate.cool_down("x.example", None)
    assert gate.cooldown_left("x.example") == DEFAULT_COOLDOWN_S
    gate.cool_down("y.example", 10 * 24 * 3600)  # a server asking for ten days
    assert gate.cooldown_left("y.example") == MAX_COOLDOWN_S
    gate.cool_down("x.example", 5)  # a shorter wish does not shorten the cooldown
    assert gate.cooldown_left("x.example") == DEFAULT_COOLDOWN_S
    now[0] += DEFAULT_COOLDOWN_S
    assert gate.cooldown_left("x.example") == 0


def test_host_limits_in_config_are_checked() -> None:
    defaults = Defaults.model_validate({"hosts": {"t.me": {"interval_s": 1.5, "concurrency": 1}}})
    assert defaults.hosts["t.me"].interval_s == 1.5
    with pytest.raises(ValidationError, match="host name in lower case"):
        Defaults.model_validate({"hosts": {"https://t.me/": {"interval_s": 1}}})
    with pytest.raises(ValidationError, match="concurrency"):
        Defaults.model_validate({"per_host": {"concurrency": 0}})


def test_one_429_throttles_every_source_of_that_host(server: LocalServer, tmp_path: Path) -> None:
    """The first feed's 429 cools the host down: the other feeds of the host are throttled
    without a request, each with the time left; nothing is marked seen, so the next poll
    after the cooldown publishes everything."""
    body = rss([Entry(guid="a", title="Troops for Ukraine", link="https://n.example/a")])
    throttle = threading.Event()
    throttle.set()

    def first(_: Request) -> Reply:
        if throttle.is_set():
            return Reply(b"slow down", 429, {"Retry-After": "120"})
        return Reply(body, headers={"Content-Type": "application/rss+xml"})

    server.route("/f0", first)
    for i in range(1, 4):
        server.route(f"/f{i}", Reply(body.replace(b"<guid>a", f"<guid>a{i}".encode()),
                                     headers={"Content-Type": "application/rss+xml"}))
    sources = [feed_source(server, f"feed-{i}", f"/f{i}") for i in range(4)]
    # One request at a time, so the 429 comes before any other feed of the host is asked.
    config = make_config(*sources, concurrency=1)
    clock = Clock()
    publisher = ListPublisher()
    with poller(config, tmp_path, publisher, clock) as p:
        report = p.poll_once()
        assert [r.status for r in report.results] == ["throttled"] * 4
        kinds = sorted(r.error_kind or "" for r in report.results)
        assert kinds == ["host-cooldown"] * 3 + ["http-429"]
        assert len(server.requests) == 1 and publisher.items == []
        for sid in ("feed-1", "feed-2", "feed-3"):
            due = p.state.health(sid).next_due_at
            assert due is not None and due >= clock.now + timedelta(seconds=115)
        throttle.clear()
        clock.advance(4 * 900)  # past the cooldown and the backoff (2 x interval, jittered)
        report = p.poll_once()
    assert [r.status for r in report.results] == ["ok"] * 4
    assert len(publisher.items) == 4

