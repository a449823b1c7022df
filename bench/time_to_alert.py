"""Time-to-alert on loopback: from the moment an item appears to the moment a webhook receives
its alert, through the real processes (issue 16, point 5).

    set -a; . /work/wt/services.env; set +a   # NEWSMON_KAFKA_BOOTSTRAP, NEWSMON_ELASTICSEARCH_URL
    .venv/bin/python bench/time_to_alert.py [--json] [--items N] [--poll-interval S]

What runs, all on 127.0.0.1, against the shared Kafka and Elasticsearch (a fresh topic,
consumer group and index prefix per run):

- a feed server with two RSS feeds the bench appends to, one announcing a WebSub hub;
- the WebSub hub of tests/websubhub.py, which pushes the grown feed to its subscribers;
- a webhook receiver that stamps each alert's arrival;
- ``newsmon push`` (subscribes the hub's feed, takes its pushes), ``newsmon poll`` (polls the
  other feed every ``--poll-interval`` seconds) and ``newsmon pipeline run --mode stream``
  (Prism), each its own process, with a webhook channel to the receiver.

Three paths, one after the other, ``--items`` items each, every item its own story (random
made-up words between English ones, holding the term of the bench's one-topic rule set, so
story grouping keeps them apart):

1. baseline: the bench produces the item to Kafka itself: the pipeline and delivery alone;
2. push: the bench appends the item to the hub's feed and has the hub publish it;
3. poll: the bench appends the item to the polled feed at a random moment of the interval.

The latency of an item runs from the moment the bench makes it available (its publication:
the item's date) to the receiver's stamp. Its parts come from the alert the pipeline stored
(docs/alerts.md): appear -> first seen (connector), first seen -> indexed (Kafka, pipeline,
store), indexed -> received (alert stage and delivery). Targets (issue 16): push
p95 <= 5 s; poll p95 <= interval + 5 s. With ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback hub and HTTP server of tests/

from tests.localhttp import Response, serve  # noqa: E402
from tests.websubhub import serve_hub  # noqa: E402

#: The bench's rule set: one topic, fired by one term (the shipped rules would group items
#: on one subject into one story, and a story alerts once).
TOPICS = """\
version: 1
languages: [en]
groups:
  BENCH:
    terms: {en: [bench-signal]}
topics:
  bench_signal:
    rules:
      - {id: signal, anchor: BENCH}
"""
#: Parts of made-up English-looking words: random pronounceable words alone read as Shona to
#: the language identifier (and a text in a language without rules does not alert).
HEAD = [
    "con", "pro", "ver", "stra", "mon", "dis", "re", "un", "over", "under", "inter", "trans",
    "sub", "per", "port", "ham", "wick"
]
MID = [
    "ter", "al", "ing", "bor", "ton", "ward", "land", "ley", "wor", "ster", "field", "man",
    "cres", "bur", "chest", "ridge"
]
TAIL = [
    "ment", "ness", "tion", "ing", "ed", "er", "ly", "ship", "hood", "ful", "ity", "ance",
    "ous", "ings", "ers"
]
#: Every other word of a text: English, never two in a row, so no two texts share a word pair
#: (story grouping's shingles) and each is its own story.
GLUE = [
    "the", "of", "and", "to", "in", "was", "that", "with", "for", "were", "said", "the", "from",
    "would", "have", "been", "by"
]
URL = re.compile(r"https://bench\.example/(baseline|push|poll)/(\d+)")


def words(rng: random.Random, n: int) -> str:
    """``n`` made-up words (about 12,000 possible): texts that share no word pairs."""
    return " ".join(rng.choice(HEAD) + rng.choice(MID) + rng.choice(TAIL) for _ in range(n))


def story(rng: random.Random) -> str:
    """A text the identifier reads as English, holding the rule's term once, that shares no
    word pair with another (checked: 300 of 300 English, no two of 100 one story)."""
    out = []
    for i, glue in enumerate(GLUE):
        out += [words(rng, 1), glue]
        if i == 8:
            out += [words(rng, 1), "bench-signal"]
    return " ".join([*out, words(rng, 1)]).capitalize() + "."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quantile(values: list[float], q: float) -> float:
    """Nearest rank, as newsmon.ops.report.quantile (imported lazily there: keep this script's
    start light)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Feed:
    """An RSS feed the bench appends items to; served as it stands at each request."""

    def __init__(self, url: str, hub: str | None = None) -> None:
        self.url = url
        self.hub = hub
        self.items: list[str] = [self._item("seed", "An old note without the term",
                                            "Nothing to see here at all.", datetime(2020, 1, 1,
                                                                                   tzinfo=UTC))]
        self.lock = threading.Lock()

    @staticmethod
    def _item(key: str, title: str, text: str, published: datetime) -> str:
        return (f"<item><guid>https://bench.example/{key}</guid><title>{title}</title>"
                f"<link>https://bench.example/{key}</link><description>{text}</description>"
                f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate></item>")

    def add(self, key: str, title: str, text: str, published: datetime) -> None:
        with self.lock:
            self.items.insert(0, self._item(key, title, text, published))

    def body(self) -> bytes:
        hub = (f'<atom:link rel="hub" href="{self.hub}"/><atom:link rel="self" '
               f'href="{self.url}"/>') if self.hub else ""
        with self.lock:
            entries = "".join(self.items[:50])
        return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
                'xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Bench</title>'
                f"<link>https://bench.example/</link>{hub}{entries}</channel></rss>").encode()

    def route(self, _handler: BaseHTTPRequestHandler) -> Response:
        return Response(self.body(), headers={"Content-Type": "application/rss+xml"})


class Receiver:
    """The webhook: stamps each ``alert.created`` with its arrival (wall clock)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.cond = threading.Condition()

    def __call__(self, handler: BaseHTTPRequestHandler) -> Response:
        stamp = time.time()
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        message = json.loads(body or b"{}")
        found = URL.search(str(message.get("alert", {}).get("url", "")))
        if found and message.get("event") == "alert.created":
            with self.cond:
                self.arrived.setdefault(f"{found[1]}/{found[2]}", stamp)
                self.cond.notify_all()
        return Response(b"{}", headers={"Content-Type": "application/json"})

    def wait(self, key: str, timeout_s: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: key in self.arrived, timeout_s)
            return self.arrived.get(key)


def write_configs(tmp: Path, kafka: dict[str, str], search: dict[str, str], hook: str,
                  push_feed: Feed, poll_feed: Feed, push_port: int,
                  poll_interval_s: int) -> tuple[Path, Path]:
    """newsmon.yaml for ``push`` (the hub's feed) and for ``poll`` and the pipeline (the
    polled feed): two state directories, one Kafka topic, one index prefix."""
    (tmp / "topics.yaml").write_text(TOPICS)
    (tmp / "alerts.yaml").write_text(yaml.safe_dump({
        "channels": {"bench": {"type": "webhook", "url": hook, "timeout_s": 5}},
        "rules": [{"name": "bench", "topic": "bench_signal", "channels": ["bench"]}]}))
    source = {"type": "rss", "lang": "en", "country": "GB"}
    feeds = {
        "push": {"defaults": {"min_interval_s": 0, "push": {
                     "callback_url": f"http://127.0.0.1:{push_port}/websub",
                     "listen": f"127.0.0.1:{push_port}"}},
                 "sources": [{**source, "id": "bench-push", "url": push_feed.url,
                              "name": "Bench wire", "kind": "wire", "owner": "Bench Wire"}]},
        "poll": {"defaults": {"min_interval_s": 0},
                 "sources": [{**source, "id": "bench-poll", "url": poll_feed.url,
                              "name": "Bench channel", "kind": "osint_channel",
                              "owner": "Bench OSINT", "interval_s": poll_interval_s}]},
    }
    configs = []
    for name, feed_config in feeds.items():
        (tmp / f"feeds-{name}.yaml").write_text(yaml.safe_dump(feed_config))
        config = tmp / f"newsmon-{name}.yaml"
        config.write_text(yaml.safe_dump({
            "state_dir": str(tmp / f"state-{name}"), "feeds": f"feeds-{name}.yaml",
            "topics": "topics.yaml", "alerts": "alerts.yaml", "kafka": kafka,
            "search": search}))
        configs.append(config)
    return configs[0], configs[1]


@contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A newsmon command in its own process (its output in ``log``) until the block ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "newsmon.cli", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def check_alive(procs: list[subprocess.Popen[bytes]], what: str = "the items") -> None:
    dead = [p for p in procs if p.poll() is not None]
    if dead:
        raise SystemExit(f"a newsmon process exited ({dead[0].args!r}) during {what}: see its "
                         "log")


def wait(check: Callable[[], bool], what: str, timeout_s: float,
         procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        check_alive(procs, f"the wait for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def produce(producer: Any, topic: str, key: str, title: str, text: str,
            published: datetime) -> None:
    """The baseline path: a raw item straight into Kafka, as a connector would publish it
    (acknowledged by every replica before this returns)."""
    from newsmon.models import RawItem, SourceRef

    ref = SourceRef(id="bench-kafka", type="rss", name="Bench direct", lang="en",
                    country="GB")
    item = RawItem.make(source=ref, guid=f"https://bench.example/{key}",
                        url=f"https://bench.example/{key}", title=title, summary=text,
                        published_at=published, first_seen_at=datetime.now(UTC))
    producer.send(topic, key=b"bench-kafka", value=item.to_json())
    producer.flush()


def stored_alerts(es: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The run's alerts by item key (``push/3``), as the pipeline stored them."""
    httpx.post(f"{es}/{prefix}-alerts*/_refresh", timeout=30)
    hits = httpx.post(f"{es}/{prefix}-alerts*/_search", json={"size": 1000},
                      timeout=30).json()["hits"]["hits"]
    out = {}
    for hit in hits:
        found = URL.search(str(hit["_source"].get("url", "")))
        if found:
            out[f"{found[1]}/{found[2]}"] = hit["_source"]
    return out


def stamp(doc: dict[str, Any], key: str) -> float | None:
    value = doc.get(key)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def summarize(path: str, appeared: dict[str, float], receiver: Receiver,
              alerts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """p50/p95 of the whole latency and of each part, over the items of ``path``."""
    total: list[float] = []
    parts: dict[str, list[float]] = {"to_first_seen": [], "to_indexed": [], "to_received": []}
    lost = 0
    for key, t0 in appeared.items():
        got = receiver.arrived.get(key)
        if got is None:
            lost += 1
            continue
        total.append(got - t0)
        doc = alerts.get(key, {})
        # The receiver's stamp, not the alert's notified_at, ends the last part: notified_at is
        # the deliverer's ack, a moment after the receiver has the message.
        marks = [t0, stamp(doc, "first_seen_at"), stamp(doc, "indexed_at"), got]
        for name, (a, b) in zip(parts, itertools.pairwise(marks), strict=True):
            if a is not None and b is not None:
                parts[name].append(b - a)
    out: dict[str, Any] = {"path": path, "items": len(appeared), "lost": lost}
    if total:
        out |= {"p50_s": round(quantile(total, 0.5), 2), "p95_s": round(quantile(total, 0.95), 2),
                "max_s": round(max(total), 2)}
        out["parts_p50_s"] = {k: round(quantile(v, 0.5), 2) for k, v in parts.items() if v}
    return out


def scrape_lag(port: int) -> dict[str, float]:
    """The pipeline's time-to-alert histogram counts by path and source kind (what
    Prometheus scrapes)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {f"{s.labels['fed_by']}/{s.labels['source_kind']}": s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "newsmon_alert_lag_seconds_count"
            and s.labels.get("lag") == "publish_to_notified"}


def run(items: int, poll_interval_s: int, quiet: bool) -> dict[str, Any]:
    bootstrap = os.environ.get("NEWSMON_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    es = os.environ.get("NEWSMON_ELASTICSEARCH_URL", "http://127.0.0.1:9200")
    tag = uuid.uuid4().hex[:8]
    prefix = f"tta{tag}"
    kafka = {"bootstrap_servers": bootstrap, "raw_topic": f"tta-raw-{tag}",
             "dead_letter_topic": f"tta-dead-{tag}", "group_id": f"tta-group-{tag}"}
    rng = random.Random(tag)

    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="tta-"))
    receiver = Receiver()
    metrics_port, push_port = free_port(), free_port()
    with ExitStack() as stack:
        hub = stack.enter_context(serve_hub())
        web = stack.enter_context(serve({"/hook": receiver}))
        push_feed = Feed(web.url("/push.xml"), hub.url)
        poll_feed = Feed(web.url("/poll.xml"))
        web.routes.update({"/push.xml": push_feed.route, "/poll.xml": poll_feed.route})
        push_config, poll_config = write_configs(
            tmp, kafka, {"backend": "elasticsearch", "url": es, "index_prefix": prefix},
            web.url("/hook"), push_feed, poll_feed, push_port, poll_interval_s)

        def item(path: str, i: int) -> tuple[str, str, str]:
            return f"{path}/{i}", f"Bench {words(rng, 5)}", story(rng)

        # A first item creates the topic before the stream subscribes, and its alert says the
        # whole chain is up (Prism's start, the indices, the channel).
        key, title, text = item("baseline", 0)
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        stack.callback(producer.close)
        produce(producer, kafka["raw_topic"], key, title, text, datetime.now(UTC))
        say(f"starting the stream pipeline (logs in {tmp})")
        stream = stack.enter_context(process(
            ["pipeline", "run", "--mode", "stream", "-c", str(poll_config),
             "--metrics-port", str(metrics_port)],
            tmp / "stream.log"))
        procs = [stream]
        wait(lambda: key in receiver.arrived, "the first alert (stream start)", 300, procs)
        procs.append(stack.enter_context(process(
            ["push", "-c", str(push_config), "--allow-private"], tmp / "push.log")))
        wait(lambda: bool(hub.active(push_feed.url)), "the hub's subscription", 60, procs)
        procs.append(stack.enter_context(process(["poll", "-c", str(poll_config)],
                                                 tmp / "poll.log")))
        time.sleep(2)  # the first poll (the seed item) out of the way

        appeared: dict[str, dict[str, float]] = {"baseline": {}, "push": {}, "poll": {}}
        timeout_s = poll_interval_s * 1.5 + 60
        for path in ("baseline", "push", "poll"):
            say(f"{path}: {items} items")
            for i in range(1, items + 1):
                key, title, text = item(path, i)
                if path == "poll":  # a random moment of the poll cycle
                    time.sleep(rng.uniform(0, poll_interval_s))
                t0 = time.time()
                published = datetime.fromtimestamp(t0, UTC)
                appeared[path][key] = t0
                if path == "baseline":
                    produce(producer, kafka["raw_topic"], key, title, text, published)
                elif path == "push":
                    push_feed.add(key, title, text, published)
                    statuses = hub.publish(push_feed.url, push_feed.body())
                    if statuses != [202]:
                        raise SystemExit(f"the push of {key} was answered {statuses}")
                else:
                    poll_feed.add(key, title, text, published)
                got = receiver.wait(key, timeout_s)
                say(f"  {key}: " + (f"{got - t0:.2f} s" if got else "no alert"))
                check_alive(procs)
        # The stream exports its counters every few seconds: wait for every alert's.
        expected = 1 + sum(len(v) for v in appeared.values())
        deadline = time.monotonic() + 30
        while sum((exported := scrape_lag(metrics_port)).values()) < expected and (
                time.monotonic() < deadline):
            time.sleep(1)
        alerts = stored_alerts(es, prefix)
    lost = sorted(k for keys in appeared.values() for k in keys if k not in receiver.arrived)
    if lost:  # kept, with the indices, to find where they stopped
        for key in lost:
            say(f"no alert received for {key}: {where_is(es, prefix, key)}")
        say(f"indices {prefix}-* and logs in {tmp} kept")
    else:
        httpx.delete(f"{es}/{prefix}-*", timeout=30)
        httpx.delete(f"{es}/_index_template/{prefix}-*", timeout=30)
    results = {path: summarize(path, appeared[path], receiver, alerts) for path in appeared}
    return {"results": results, "exported": exported, "logs": str(tmp)}


def where_is(es: str, prefix: str, key: str) -> str:
    """Where an item whose alert never came stopped: not stored, stored in another item's
    story (the pipeline judged them one story: no new alert), or its alert's delivery state."""
    url = f"https://bench.example/{key}"
    docs = httpx.post(f"{es}/{prefix}-articles*/_search", timeout=30, json={
        "query": {"term": {"url": url}}, "_source": ["doc_id", "story_id"]}).json()
    hits = docs.get("hits", {}).get("hits", [])
    if not hits:
        return "no article stored"
    doc = hits[0]["_source"]
    found = httpx.post(f"{es}/{prefix}-alerts*/_search", timeout=30, json={
        "query": {"term": {"doc_ids": doc["doc_id"]}}}).json()["hits"]["hits"]
    if not found:
        return f"article {doc['doc_id']} stored (story {doc['story_id']}), no alert holds it"
    alert = found[0]["_source"]
    return (f"article in alert {alert['alert_id']} (first copy {alert.get('url')}, "
            f"{len(alert.get('doc_ids', []))} copies), notified {alert.get('notified')}, "
            f"pending {alert.get('pending')}, failed {alert.get('failed')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--items", type=int, default=10, help="items per path")
    parser.add_argument("--poll-interval", type=int, default=5,
                        help="seconds between two polls of the polled feed")
    args = parser.parse_args()
    out = run(args.items, args.poll_interval, quiet=False)
    results = out["results"]
    print(f"time-to-alert on loopback, {args.items} items per path, poll interval "
          f"{args.poll_interval} s (item appears -> webhook receives its alert)")
    print(f"{'path':<9} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'lost':>4}   parts (p50 s: appear"
          "->first seen, ->indexed, ->received)")
    for path, r in results.items():
        parts = r.get("parts_p50_s", {})
        print(f"{path:<9} {r.get('p50_s', float('nan')):>6} {r.get('p95_s', float('nan')):>6} "
              f"{r.get('max_s', float('nan')):>6} {r['lost']:>4}   "
              + ", ".join(f"{v}" for v in parts.values()))
    print(f"exported newsmon_alert_lag_seconds_count{{lag=publish_to_notified}} by path: "
          f"{out['exported']}")
    push, poll, base = results["push"], results["poll"], results["baseline"]
    targets = {"push_p95_le_5s": push.get("p95_s", math.inf) <= 5,
               "poll_p95_le_interval_plus_5s":
               poll.get("p95_s", math.inf) <= args.poll_interval + 5}
    print(f"targets: {targets}")
    if args.json:
        print(json.dumps({
            "push_p50_s": push.get("p50_s"), "push_p95_s": push.get("p95_s"),
            "poll_p50_s": poll.get("p50_s"), "poll_p95_s": poll.get("p95_s"),
            "baseline_p50_s": base.get("p50_s"), "baseline_p95_s": base.get("p95_s"),
            "poll_interval_s": args.poll_interval, "items": args.items,
            "lost": sum(r["lost"] for r in results.values()),
            "parts_p50_s": {p: r.get("parts_p50_s", {}) for p, r in results.items()},
            "targets_met": targets}, sort_keys=True))
    if any(r["lost"] for r in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
