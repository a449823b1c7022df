"""Poll 1,000 feeds served on 127.0.0.1: newsmon's Poller beside a naive feedparser loop.

    .venv/bin/python bench/bench_poll.py [--feeds 1000] [--concurrency 16] [--items 20]

The feeds are served by a separate process (so the CPU time measured here is the client's
alone). Even-numbered feeds send an ETag and answer 304 to a request that carries it; odd ones
have no validators and gain 5 new items per request, like a busy feed. Three runs, in this
process, over the same feeds:

1. Poller, cold: empty state, so every feed answers 200 and every item is new.
2. Poller, warm: the state has the ETags, so half the feeds answer 304 (the mix of a real
   poll); the other half answer 200 with 5 new items out of their 20.
3. Naive: ``for url in urls: feedparser.parse(url)``, sequential, no conditional GET (what the
   connectors replace: feedparser's own fetching, which also has no timeout).

Printed per run: wall time, feeds per second, CPU time of this process (user + system).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser

from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.hosts import HostLimit
from newsmon.connectors.publisher import ListPublisher
from newsmon.connectors.results import PollReport
from newsmon.connectors.rss import RssSource
from newsmon.connectors.runner import Poller

WORDS = (
    "NATO defence ministers discussed air defence deliveries to Ukraine while the Kremlin "
    "warned of escalation after ATACMS and Storm Shadow strikes on Russian territory; "
    "European capitals debated sending troops to enforce a future ceasefire. "
)


def render(feed: int, first: int, items: int) -> bytes:
    entries = "".join(
        f"<item><guid>https://bench.example/{feed}/{k}</guid>"
        f"<title>Feed {feed} story {k}: air defence for Ukraine</title>"
        f"<link>https://bench.example/{feed}/{k}?utm_source=rss</link>"
        f"<description>{WORDS * 3}</description>"
        f"<pubDate>Mon, 25 Nov 2024 10:{k % 60:02d}:00 +0000</pubDate></item>"
        for k in range(first, first + items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed {feed}</title><link>https://bench.example/{feed}</link>"
        f"{entries}</channel></rss>"
    ).encode()


def serve(port_out: Any, items: int, latency_s: float) -> None:
    """The feed server (a child process): /feed/<n>, as described in the module docstring."""
    static: dict[int, bytes] = {}
    hits: dict[int, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def do_GET(self) -> None:
            if latency_s:
                time.sleep(latency_s)  # a remote server's round trips and think time
            feed = int(self.path.rsplit("/", 1)[1])
            headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
            if feed % 2 == 0:
                etag = f'"{feed}-v1"'
                headers["ETag"] = etag
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with lock:
                    body = static.setdefault(feed, render(feed, 0, items))
            else:
                with lock:
                    n = hits[feed] = hits.get(feed, -1) + 1
                body = render(feed, n * 5, items)
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    httpd = Server(("127.0.0.1", 0), Handler)
    port_out.put(httpd.server_address[1])
    httpd.serve_forever()


def measure(label: str, feeds: int, run: Callable[[], str]) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    detail = run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{label:<44} {wall:7.2f} s  {feeds / wall:8.1f} feeds/s  CPU {cpu:6.2f} s  {detail}")


def describe(report: PollReport) -> str:
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return f"{counts}, {report.new_items} new items"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay before each answer, like a real server's round trips")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive loop")
    args = parser.parse_args()

    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(
        target=serve, args=(ports, args.items, args.latency_ms / 1000), daemon=True
    )
    server.start()
    port = ports.get(timeout=10)
    urls = [f"http://127.0.0.1:{port}/feed/{n}" for n in range(args.feeds)]
    config = FeedsConfig(
        # One local server stands in for 1,000 publishers: the per-host limit (meant for real
        # hosts) would otherwise make this a benchmark of one host.
        defaults=Defaults(concurrency=args.concurrency,
                          per_host=HostLimit(concurrency=args.concurrency)),
        sources=tuple(
            RssSource(id=f"bench-{n}", type="rss", url=url, name=f"Bench {n}", lang="en",
                      country="GB")
            for n, url in enumerate(urls)
        ),
    )
    print(f"{args.feeds} feeds of {args.items} items (~{len(render(0, 0, args.items)) // 1024} KB)"
          f" on 127.0.0.1:{port}, {args.latency_ms:g} ms latency;"
          f" Poller with {args.concurrency} threads")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            publisher = ListPublisher()
            with Poller(config, Path(tmp) / "state.sqlite", publisher) as poller:
                measure("Poller, cold (all 200, all items new)", args.feeds,
                        lambda: describe(poller.poll_once(force=True)))
                measure("Poller, warm (half 304, half 200 + 5 new)", args.feeds,
                        lambda: describe(poller.poll_once(force=True)))

        def naive() -> str:
            entries = sum(len(feedparser.parse(url).entries) for url in urls)
            return f"{entries} entries parsed"

        if not args.no_naive:
            measure("naive sequential feedparser.parse(url)", args.feeds, naive)
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
