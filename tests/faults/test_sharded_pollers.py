"""Three pollers sharing 40 feeds (``newsmon poll --shard-group``), one killed with SIGKILL
between publishing a source's items and marking them seen: every item lands in the raw topic
exactly once, no source is polled by two pollers at a time, and the dead poller's shards are
taken over within the bound docs/scaling.md states.

Each poller has a config directory of its own (as on its own host) that differs only in its
HTTP User-Agent, so the feed server can tell who polled what; who held which shard when is
read from the pollers' JSON logs ("holds shards" / "gave up shards", logged under the lock the
polls take). Kafka is the shared test broker; the topics are the test's own.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition

from newsmon.config import KafkaSettings
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.sharding import assign
from newsmon.models import RawItem
from tests.faults.helpers import NEWSMON, ROOT, feed_link, record, rss_feed, wait_until
from tests.localhttp import Response, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

FEEDS = 40
#: Every feed shows one more item each GROW_S seconds, up to CAP: items keep appearing
#: before, during and after the fault (every poll finds new ones), and all of them are there
#: at the end.
CAP = 120
GROW_S = 0.5
SHARDS = 60
MEMBERS = ("p0", "p1", "p2")
VICTIM = "p0"
#: docs/scaling.md: session timeout (10 s) + a heartbeat (3.3 s) + the wait for a dead
#: owner's transaction beyond the session timeout (10 s + 10 s - 10 s), plus 2 s for reading
#: the seen marks and the logging.
TAKEOVER_BOUND_S = 10 + 10 / 3 + 10 + 2


@dataclass
class GrowingFeeds:
    started: float = field(default_factory=time.monotonic)
    #: (feed number, member, wall time the request arrived)
    requests: list[tuple[int, str, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def shown(self) -> int:
        return min(CAP, 1 + int((time.monotonic() - self.started) / GROW_S))

    def route(self, number: int) -> Callable[[BaseHTTPRequestHandler], Response]:
        def answer(handler: BaseHTTPRequestHandler) -> Response:
            member = handler.headers.get("User-Agent", "").rsplit("/", 1)[-1]
            with self.lock:
                self.requests.append((number, member, time.time()))
            return Response(rss_feed(number, range(self.shown())),
                            headers={"Content-Type": "application/rss+xml"})
        return answer


@contextmanager
def growing_feeds() -> Iterator[GrowingFeeds]:
    feeds = GrowingFeeds()
    with serve({f"/feed/{n}": feeds.route(n) for n in range(FEEDS)}) as server:
        feeds.base = server.url("/feed/")
        yield feeds


def feeds_yaml(base: str, member: str) -> str:
    lines = "".join(f"  - {{id: feed-{n}, type: rss, url: '{base}{n}', name: Feed {n},"
                    " lang: en, country: GB}\n" for n in range(FEEDS))
    return (f"defaults:\n  interval_s: 1\n  min_interval_s: 0\n  concurrency: 4\n"
            f"  http: {{user_agent: newsmon-shard-test/{member}}}\nsources:\n{lines}")


@dataclass
class Member:
    name: str
    home: Path
    proc: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.home / "poller.log"

    @property
    def state(self) -> Path:
        return self.home / "state" / f"connectors.g.{self.name}.sqlite"

    def events(self) -> list[tuple[float, str, set[int]]]:
        """(time, "holds"/"gave up", shards) from the poller's log."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            message = str(event.get("message", ""))
            for kind in ("holds", "gave up"):
                marker = f"shard member {self.name}: {kind} shards "
                if message.startswith(marker):
                    shards = _shards(message[len(marker):].split(" ", 1)[0])
                    out.append((datetime.fromisoformat(event["ts"]).timestamp(), kind, shards))
        return out

    def held(self) -> set[int]:
        """The shards held after the last event."""
        held: set[int] = set()
        for _, kind, shards in self.events():
            held = set(shards) if kind == "holds" else held - shards
        return held


def _shards(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.strip(";").split(","):
        if part == "none" or not part:
            continue
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def holdings(events: list[tuple[float, str, set[int]]],
             end: float | None) -> list[tuple[float, float, set[int]]]:
    """(from, to, shards) intervals of what a member held; the last one open until ``end``."""
    out: list[tuple[float, float, set[int]]] = []
    held: set[int] = set()
    since = 0.0
    for at, kind, shards in events:
        if held:
            out.append((since, at, held))
        held = set(shards) if kind == "holds" else held - shards
        since = at
    if held:
        out.append((since, end if end is not None else float("inf"), held))
    return out


def start_member(tmp_path: Path, name: str, base: str, kafka: KafkaSettings) -> Member:
    home = tmp_path / name
    home.mkdir()
    (home / "feeds.yaml").write_text(feeds_yaml(base, name))
    (home / "newsmon.yaml").write_text(
        f"state_dir: {home / 'state'}\nfeeds: feeds.yaml\ntopics: {ROOT / 'config' / 'topics.yaml'}"
        f"\nalerts: {ROOT / 'config' / 'alerts.yaml'}\n"
        "poller:\n  shard_group: g\n"
        f"  shard_member: {name}\n  shard_partitions: {SHARDS}\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "NEWSMON_LOG_FORMAT": "json",
           "NEWSMON_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "NEWSMON_KAFKA__RAW_TOPIC": kafka.raw_topic,
           "NEWSMON_KAFKA__REQUEST_TIMEOUT_MS": "10000"}
    log = (home / "poller.log").open("wb")
    proc = subprocess.Popen([str(NEWSMON), "poll", "-c", str(home / "newsmon.yaml")], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    return Member(name, home, proc)


def alive(members: Iterable[Member]) -> None:
    """Fails at once when a poller ended by itself, with the end of its log."""
    for member in members:
        if member.proc.poll() is not None or '"level": "error", "logger": "newsmon' in (
                member.log.read_text(errors="replace")):
            pytest.fail(f"poller {member.name} failed ({member.proc.returncode}):\n"
                        f"{member.log.read_text(errors='replace')[-3000:]}", pytrace=False)


def in_raw_topic(kafka: KafkaSettings) -> list[RawItem]:
    """Every item committed to the raw topic (a read_committed reader, as the pipeline's)."""
    consumer = KafkaConsumer(**kafka.client_options(), isolation_level="read_committed",
                             enable_auto_commit=False, fetch_max_bytes=8 * 1024 * 1024,
                             receive_message_max_bytes=16 * 1024 * 1024)
    try:
        parts = consumer.partitions_for_topic(kafka.raw_topic) or set()
        tps = [TopicPartition(kafka.raw_topic, p) for p in parts]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        items: list[RawItem] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "the raw topic could not be read"
            for records in consumer.poll(timeout_ms=500).values():
                items.extend(RawItem.from_json(r.value) for r in records)
        return items
    finally:
        consumer.close()


def test_three_pollers_one_killed_between_publish_and_mark(
        tmp_path: Path, kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, raw_topic=f"shard-raw-{tag}")
    with growing_feeds() as feeds:
        members = {name: start_member(tmp_path, name, feeds.base, kafka) for name in MEMBERS}
        try:
            check_run(members, feeds, kafka)
        finally:
            for member in members.values():
                if member.proc.poll() is None:
                    member.proc.kill()
                    member.proc.wait(timeout=30)


def check_run(members: dict[str, Member], feeds: GrowingFeeds, kafka: KafkaSettings) -> None:
    config = FeedsConfig.model_validate(yaml.safe_load(feeds_yaml(feeds.base, "any")))
    shard_of = assign(config.sources, config.defaults, SHARDS)
    victim = members[VICTIM]

    def shared_out() -> bool:
        alive(members.values())
        held = [m.held() for m in members.values()]
        return all(held) and set().union(*held) == set(range(SHARDS)) and sum(
            map(len, held)) == SHARDS

    assert wait_until(shared_out, 120, every_s=0.5), {
        m.name: (m.held(), m.log.read_text()[-2000:]) for m in members.values()}
    victim_sources = {s for s, shard in shard_of.items() if shard in victim.held()}
    assert wait_until(lambda: any(i.source.id in victim_sources for i in in_raw_topic(kafka)),
                      60, every_s=1)

    # The victim's state store held: its next publish commits to Kafka, then its seen marks
    # wait for the lock (SQLite's busy timeout), and it is killed there. Its first write after
    # the lock may be another one (a health row): then nothing is published while it waits,
    # and the lock is let go and taken again.
    lock = sqlite3.connect(victim.state, isolation_level=None, timeout=30)
    published_not_marked: list[RawItem] = []
    for _ in range(10):
        lock.execute("BEGIN IMMEDIATE")
        before = {i.item_id for i in in_raw_topic(kafka)}

        def unmarked(before: set[str] = before) -> list[RawItem]:
            return [i for i in in_raw_topic(kafka)
                    if i.item_id not in before and i.source.id in victim_sources]

        if wait_until(lambda: bool(unmarked()), 4, every_s=0.2):
            time.sleep(1.0)  # its marks are waiting on the lock now
            published_not_marked = unmarked()
            break
        lock.execute("ROLLBACK")
        time.sleep(0.3)
    assert published_not_marked, "the victim never published while its store was held"
    victim.proc.send_signal(signal.SIGKILL)
    killed_at = time.time()
    victim.proc.wait(timeout=30)
    lock.execute("ROLLBACK")
    lock.close()
    with sqlite3.connect(victim.state) as db:  # the marks never reached the victim's store
        marked = {row[0] for row in db.execute("SELECT item_id FROM seen")}
    assert not marked & {i.item_id for i in published_not_marked}

    survivors = [m for m in members.values() if m is not victim]

    def taken_over() -> bool:
        alive(survivors)
        held = [m.held() for m in survivors]
        return set().union(*held) == set(range(SHARDS)) and sum(map(len, held)) == SHARDS

    assert wait_until(taken_over, 90, every_s=0.5), [m.log.read_text()[-3000:]
                                                      for m in survivors]
    takeover_s = max(
        min(at for at, kind, _ in m.events() if kind == "holds" and at > killed_at)
        for m in survivors) - killed_at

    expected = {feed_link(n, i) for n in range(FEEDS) for i in range(CAP)}
    assert wait_until(lambda: expected <= {i.url for i in in_raw_topic(kafka)}, 150,
                      every_s=2)
    time.sleep(3)  # one more pass of each survivor: a repeat would show now
    for member in survivors:
        member.proc.send_signal(signal.SIGTERM)
    for member in survivors:
        assert member.proc.wait(timeout=60) == 0, member.log.read_text()[-3000:]

    items = in_raw_topic(kafka)
    ids = Counter(i.item_id for i in items)
    urls = {i.url for i in items}
    lost = len(expected - urls)
    duplicated = sum(n - 1 for n in ids.values()) + len(urls - expected)
    repeated_unmarked = [i.item_id for i in published_not_marked if ids[i.item_id] != 1]

    # Who polled what, when: every request a member made was for a source of a shard it
    # held then, and no shard was held by two members at once.
    held_by = {m.name: holdings(m.events(), end=killed_at if m is victim else None)
               for m in members.values()}
    stray = [(feed, member, at) for feed, member, at in feeds.requests
             if not any(start <= at <= stop and shard_of[f"feed-{feed}"] in shards
                        for start, stop, shards in held_by[member])]
    overlaps = [(a, b, shard) for a in held_by for b in held_by if a < b
                for s1, e1, h1 in held_by[a] for s2, e2, h2 in held_by[b]
                for shard in h1 & h2 if s1 < e2 and s2 < e1]
    polled = {f"feed-{feed}" for feed, _, _ in feeds.requests}
    record("sharded pollers, one killed between publish and mark", feeds=FEEDS,
           items=len(expected), pollers=len(MEMBERS), published_not_marked=len(
               published_not_marked), takeover_s=round(takeover_s, 1), lost=lost,
           duplicated=duplicated, requests=len(feeds.requests))
    assert (lost, duplicated) == (0, 0)
    assert repeated_unmarked == []
    assert stray == [], stray[:10]
    assert overlaps == [], overlaps[:10]
    assert polled == set(shard_of)
    assert takeover_s <= TAKEOVER_BOUND_S, takeover_s
