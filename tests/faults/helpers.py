"""What the fault tests share: a corpus of distinct items, RSS feeds of distinct items on a
local server, a config for the fault services, the real ``newsmon`` command as a process,
and the exactly-once check on the search server."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from newsmon.config import KafkaSettings
from newsmon.connectors.publisher import KafkaPublisher
from newsmon.models import RawItem, SourceRef
from tests.localhttp import Response, serve

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = Path(sys.executable).parent / "newsmon"

_WORDS = ("harbour", "ministry", "council", "river", "budget", "railway", "festival", "court",
          "election", "vaccine", "satellite", "drought", "museum", "pension", "bridge", "tariff")
#: Matches long_range_strike in config/topics.yaml: some items raise alerts.
STRIKE = ("Ukrainian forces struck an airfield in Russia's {place} region with ATACMS missiles "
          "overnight, days after Washington allowed strikes on Russian territory.")


def make_items(n: int, tag: str, *, strikes_every: int = 0) -> list[RawItem]:
    """``n`` distinct items (no two texts alike, so none is a copy of another) over 8
    sources; every ``strikes_every``-th one is about a missile strike."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    items = []
    for i in range(n):
        source = SourceRef(id=f"{tag}-src-{i % 8}", type="rss", name=f"Source {i % 8}",
                           lang="en", country="GB")
        words = " ".join(_WORDS[(i >> shift) % len(_WORDS)] for shift in range(0, 16, 4))
        if strikes_every and i % strikes_every == 0:
            title, text = f"Strike {i}", STRIKE.format(place=f"Kursk-{i}")
        else:
            title = f"Item {i} {tag}"
            text = f"Report number {i} ({tag}) on the {words}; officials gave figure {i * 7}."
        items.append(RawItem.make(source=source, guid=f"{tag}-{i}",
                                  url=f"https://{source.id}.example/{tag}/{i}", title=title,
                                  summary=text, published_at=now, first_seen_at=now))
    return items


def rss_feed(number: int, items: Iterable[int], tag: str = "", *,
             strikes_every: int = 0) -> bytes:
    """An RSS page of feed ``number`` with the given item numbers: distinct texts, links
    ``https://feed<number>.example/[<tag>/]<i>``; every ``strikes_every``-th item is about a
    missile strike (an alert)."""
    now = format_datetime(datetime.now(UTC))
    path = f"{tag}/" if tag else ""
    entries = []
    for i in items:
        if strikes_every and i % strikes_every == 0:
            title = f"Feed {number} strike {i}"
            text = f"{STRIKE.format(place=f'Kursk-{number}-{i}')} {_filler(f'{number}-{i}')}"
        else:
            title = f"Feed {number} item {i}"
            text = (f"Report {i} of feed {number}: the council met about the "
                    f"{['bridge', 'budget', 'harbour', 'railway'][i % 4]} number "
                    f"{number * 100 + i}.")
        entries.append(f"<item><title>{title}</title><guid>f{number}-{path}{i}</guid>"
                       f"<link>{feed_link(number, i, tag)}</link><pubDate>{now}</pubDate>"
                       f"<description>{text}</description></item>")
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title>'
            f"{''.join(entries)}</channel></rss>").encode()


#: Neutral words (no war, weapon or place) for the filler of strike texts.
_FILLER = ("apple", "garden", "window", "teacher", "bicycle", "library", "summer", "coffee",
           "mountain", "blanket", "pencil", "orchestra", "village", "kitchen", "ladder",
           "market", "violin", "harvest", "cottage", "meadow", "lantern", "bakery", "island",
           "carpet", "notebook", "chimney", "festival", "pottery", "theatre", "umbrella",
           "tailor", "orchard", "ferry", "saddle", "balcony", "cabinet", "postcard", "meadow",
           "trumpet", "basket", "canvas", "harbour", "marble", "velvet", "pepper", "candle",
           "quilt", "stable", "tulip", "anchor", "biscuit", "compass", "lighthouse", "pillow",
           "scarf", "teapot", "walnut", "zipper", "glacier", "honey", "kettle", "mirror",
           "parsley", "rooftop")


def _filler(seed: str, words: int = 60) -> str:
    """Words in an order of their own per seed: two strike texts with their fillers share
    under a fifth of their word pairs, below the 0.35 at which stories merge, so each strike
    item is a story (and an alert) of its own."""
    rng = random.Random(seed)
    return " ".join(rng.choice(_FILLER) for _ in range(words)) + "."


def feed_link(number: int, i: int, tag: str = "") -> str:
    return f"https://feed{number}.example/{tag + '/' if tag else ''}{i}"


@dataclass
class Feeds:
    """What ``feed_server`` serves: ``count`` feeds at ``url(n)``; ``served`` holds the link of
    every item any answer carried (the items produced, for the exactly-once count)."""

    count: int
    base: str = ""
    served: set[str] = field(default_factory=set)
    requests: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, number: int) -> str:
        return f"{self.base}{number}"

    def sources(self, concurrency: int = 3) -> str:
        """feeds.yaml polling every feed."""
        lines = "".join(f"  - {{id: feed-{n}, type: rss, url: '{self.url(n)}', name: Feed {n},"
                        " lang: en, country: GB}\n" for n in range(self.count))
        return f"defaults:\n  concurrency: {concurrency}\nsources:\n{lines}"


@contextmanager
def feed_server(count: int, per_request: int, *, tag: str = "", growing: bool = False,
                delays: Sequence[float] = (), strikes_every: int = 0) -> Iterator[Feeds]:
    """``count`` RSS feeds on 127.0.0.1, feed ``n`` answering after ``delays[n]`` seconds.
    A fixed feed always shows items 0 to ``per_request``-1; a ``growing`` one shows
    ``per_request`` more on each request (all of them, like a feed that keeps its old items),
    so that every pass of a poller finds new ones and an item a failed pass missed is still
    there for the next."""
    feeds = Feeds(count)

    def route(number: int) -> Callable[[BaseHTTPRequestHandler], Response]:
        def answer(_: BaseHTTPRequestHandler) -> Response:
            if delays:
                time.sleep(delays[number])
            with feeds.lock:
                request = feeds.requests.get(number, 0)
                feeds.requests[number] = request + 1
                shown = range(per_request * (request + 1 if growing else 1))
                feeds.served.update(feed_link(number, i, tag) for i in shown)
            return Response(rss_feed(number, shown, tag, strikes_every=strikes_every),
                            headers={"Content-Type": "application/rss+xml"})
        return answer

    with serve({f"/feed/{n}": route(n) for n in range(count)}) as server:
        feeds.base = server.url("/feed/")
        yield feeds


@dataclass
class Setup:
    """A config directory and the environment that points it at the fault services."""

    config: Path
    env: dict[str, str]
    kafka: KafkaSettings
    es_url: str
    prefix: str

    def newsmon(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(NEWSMON), *args, "-c", str(self.config)], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(NEWSMON), *args, "-c", str(self.config)], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def start_writing(self, timeout_s: float, every_s: float = 0.2) -> subprocess.Popen[str]:
        """``newsmon pipeline run`` started, once it has written an article (or ended: the
        caller checks ``poll()`` where it needs the run still going)."""
        run = self.start("pipeline", "run")
        assert wait_until(lambda: self.articles() > 0 or run.poll() is not None, timeout_s,
                          every_s)
        return run

    def run_on_new_items(self, n: int, tag: str, *,
                         strikes_every: int) -> tuple[list[RawItem], subprocess.Popen[str]]:
        """:func:`make_items` published, and a pipeline run on them that has begun writing:
        where a fault test strikes."""
        items = make_items(n, tag, strikes_every=strikes_every)
        self.publish(items)
        return items, self.start_writing(120)

    def publish(self, items: Sequence[RawItem]) -> None:
        publisher = KafkaPublisher(self.kafka)
        try:
            for start in range(0, len(items), 500):
                publisher.publish(items[start:start + 500])
        finally:
            publisher.close()

    def indexed_item_ids(self) -> list[str]:
        """The item id of every article document, duplicates included."""
        return self.indexed("item_id")

    def indexed(self, field: str) -> list[str]:
        """``field`` of every article document, duplicates included."""
        return [str(doc[field]) for doc in self.docs("articles", fields=(field,))]

    def articles(self) -> int:
        index = f"{self.prefix}-articles"
        try:
            response = httpx.post(f"{self.es_url}/{index}/_count", timeout=10,
                                  json={"query": {"match_all": {}}})
        except httpx.HTTPError:
            return -1
        return int(response.json().get("count", 0)) if response.status_code == 200 else 0

    def docs(self, kind: str, fields: Sequence[str] | None = None) -> list[dict[str, object]]:
        """The documents of one index kind (at most 10,000), or only ``fields`` of them."""
        index = f"{self.prefix}-{kind}"
        httpx.post(f"{self.es_url}/{index}/_refresh", timeout=60)
        body: dict[str, object] = {"size": 10_000, "query": {"match_all": {}}}
        if fields is not None:
            body["_source"] = list(fields)
        response = httpx.post(f"{self.es_url}/{index}/_search", timeout=60, json=body)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [hit["_source"] for hit in response.json()["hits"]["hits"]]


def setup(tmp_path: Path, kafka: str, es_url: str, *, alerts: str | None = None,
          feeds: str = "sources: []\n", request_timeout_ms: int = 12_000) -> Setup:
    tag = uuid.uuid4().hex[:8]
    prefix = f"f{tag}"
    (tmp_path / "feeds.yaml").write_text(feeds)
    alerts_path = ROOT / "config" / "alerts.yaml"
    if alerts is not None:
        alerts_path = tmp_path / "alerts.yaml"
        alerts_path.write_text(alerts)
    config = tmp_path / "newsmon.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\nfeeds: feeds.yaml\n"
                      f"topics: {ROOT / 'config' / 'topics.yaml'}\nalerts: {alerts_path}\n")
    kafka_settings = KafkaSettings(bootstrap_servers=kafka, raw_topic=f"fault-raw-{tag}",
                                   dead_letter_topic=f"fault-dead-{tag}",
                                   group_id=f"fault-group-{tag}",
                                   request_timeout_ms=request_timeout_ms)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "NEWSMON_KAFKA__BOOTSTRAP_SERVERS": kafka,
        "NEWSMON_KAFKA__RAW_TOPIC": kafka_settings.raw_topic,
        "NEWSMON_KAFKA__DEAD_LETTER_TOPIC": kafka_settings.dead_letter_topic,
        "NEWSMON_KAFKA__GROUP_ID": kafka_settings.group_id,
        "NEWSMON_KAFKA__REQUEST_TIMEOUT_MS": str(request_timeout_ms),
        "NEWSMON_SEARCH__BACKEND": "elasticsearch",
        "NEWSMON_SEARCH__URL": es_url,
        "NEWSMON_SEARCH__INDEX_PREFIX": prefix,
        "NEWSMON_SEARCH__REQUEST_TIMEOUT_S": "10",
        "NEWSMON_SEARCH__MAX_RETRIES": "2",
    }
    return Setup(config, env, kafka_settings, es_url, prefix)


def wait_until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()


def in_topic(kafka: KafkaSettings) -> int:
    """Messages in the raw topic (0 while it does not exist)."""
    try:
        consumer = KafkaConsumer(**kafka.client_options())
    except KafkaError:
        return 0
    try:
        partitions = consumer.partitions_for_topic(kafka.raw_topic) or set()
        tps = [TopicPartition(kafka.raw_topic, p) for p in partitions]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    except KafkaError:
        return 0
    finally:
        consumer.close()


def exactly_once(indexed: Sequence[str], items: Sequence[RawItem]) -> tuple[int, int]:
    """(lost, duplicated) item counts."""
    return lost_and_duplicated(indexed, {item.item_id for item in items})


def lost_and_duplicated(indexed: Iterable[str], expected: Iterable[str]) -> tuple[int, int]:
    """(lost, duplicated) for the keys found on the server against those expected: lost are
    expected keys never found; duplicated, the finds beyond the first of a key plus the finds
    of keys never expected."""
    wanted = set(expected)
    seen: dict[str, int] = {}
    for key in indexed:
        seen[key] = seen.get(key, 0) + 1
    lost = len(wanted - seen.keys())
    duplicated = sum(n - 1 for n in seen.values()) + len(seen.keys() - wanted)
    return lost, duplicated


def record(test: str, **fields: object) -> None:
    """Append the measurements of one fault test to ``$NEWSMON_FAULTS_REPORT`` (JSON lines;
    docs/reliability.md is written from it) when that variable is set."""
    import json

    path = os.environ.get("NEWSMON_FAULTS_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"test": test, **fields}) + "\n")
