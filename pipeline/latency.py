"""Produce -> searchable latency of stream mode: the one measuring loop that the pipeline
benchmark (bench/bench_pipeline.py) and the end-to-end test (tests/pipeline/
test_pipeline_kafka.py) share.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence

import httpx

from newsmon.models import RawItem
from newsmon.pipeline.app import RunContext
from newsmon.pipeline.jobs import run_kafka_stream

__all__ = ["p50_p95", "searchable_latencies", "url_is_searchable"]


def url_is_searchable(ctx: RunContext, url: str, client: httpx.Client | None = None) -> bool:
    """Whether an article with this URL is found by a search now (no forced refresh: the
    server's own refresh interval is part of the latency). ``client``, if given, keeps its
    connection: a new one per look costs the measuring loop tens of ms on a loaded machine."""
    search = ctx.settings.search
    post = client.post if client is not None else httpx.post
    resp = post(f"{search.url}/{search.index_prefix}-articles/_search",
                json={"query": {"term": {"url": url}}}, timeout=10)
    return resp.status_code == 200 and bool(resp.json()["hits"]["hits"])


def p50_p95(latencies: Sequence[float]) -> tuple[float, float]:
    """The median and the 95th percentile, inclusive (with few samples the exclusive method
    extrapolates past the largest)."""
    if len(latencies) < 2:
        return latencies[0], latencies[0]
    return (statistics.median(latencies),
            statistics.quantiles(latencies, n=20, method="inclusive")[18])


def searchable_latencies(
    ctx: RunContext,
    items: Sequence[RawItem],
    *,
    interval_s: float = 0.2,
    ready: Callable[[], bool] | None = None,
    timeout_s: float = 60.0,
    runner: str = "PrismRunner",
    extra_options: Sequence[str] = (),
) -> list[float]:
    """Seconds from producing each item (one at a time) to its URL being searchable, with
    ``run_kafka_stream`` running in a thread on ``ctx``; an item not searchable within
    ``timeout_s`` counts as ``timeout_s``. ``ready``, if given, is waited for (up to 120 s)
    before the first item: a warm-up item already searchable, say.

    One producer for all items, created before the clock starts: connecting is not latency.
    """
    from kafka import KafkaProducer

    stop = threading.Event()
    worker = threading.Thread(target=run_kafka_stream, args=(ctx, stop), daemon=True,
                              kwargs={"interval_s": interval_s, "runner": runner,
                                      "extra_options": extra_options})
    kafka = ctx.settings.kafka
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    client = httpx.Client()
    worker.start()
    latencies = []
    try:
        deadline = time.monotonic() + 120
        while ready is not None and not ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        for item in items:
            started = time.monotonic()
            producer.send(kafka.raw_topic, key=item.source.id.encode(), value=item.to_json())
            producer.flush()
            while time.monotonic() - started < timeout_s:
                if url_is_searchable(ctx, item.url, client):
                    break
                time.sleep(0.02)
            latencies.append(min(time.monotonic() - started, timeout_s))
    finally:
        producer.close()
        client.close()
        stop.set()
        worker.join(timeout=120)
    return latencies
