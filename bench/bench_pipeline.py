"""Batch-mode throughput end to end, beside the raw bulk-index rate of the same documents.

    set -a; . ./.services/env; set +a
    .venv/bin/python bench/bench_pipeline.py --articles 50000 --backend elasticsearch

1. N realistic synthetic articles (eight languages, built from the sentences of the project's
   own gold set; one in ten a rewrite of an earlier story) are produced to a fresh Kafka topic.
2. ``run_kafka_batch`` processes them end to end (decode, normalize, classify, group stories,
   bulk-write, alerts) on FnApiRunner: articles per second.
3. Baseline in the same process: the same documents bulk-indexed straight into a fresh index
   of the same server with the client's ``streaming_bulk`` -- the limit the pipeline's writes
   cannot beat.
4. Stream latency: with ``run_kafka_stream`` running, single items are produced and the time
   until each is searchable is measured (p50, p95; ``newsmon.pipeline.latency``).

``--runner`` (FnApiRunner, DirectRunner, PrismRunner) and ``--workers N`` (Beam's
``direct_num_workers`` with ``multi_processing``) choose how it runs; ``--json`` ends the
output with one JSON object of the figures, peak RSS included.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaProducer

from newsmon.config import KafkaSettings, SearchSettings, Settings
from newsmon.models import RawItem, SourceRef
from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig
from newsmon.pipeline.app import RunContext
from newsmon.pipeline.io_kafka import ensure_topics
from newsmon.pipeline.jobs import run_kafka_batch
from newsmon.pipeline.latency import p50_p95, searchable_latencies, url_is_searchable
from newsmon.pipeline.normalize import normalize_item, text_hash
from newsmon.pipeline.stages.store import Placed, article_document
from newsmon.pipeline.store import open_store
from newsmon.pipeline.stories import Fingerprint, signature

ROOT = Path(__file__).resolve().parents[1]

#: Share of articles built from on-topic sentences. Monitored topics are a small part of
#: what hundreds of sources publish; 15 % is generous, so alerting is not under-measured.
TOPICAL_SHARE = 0.15


def sentence_pools() -> dict[tuple[str, bool], list[str]]:
    """Sentences of the project's own gold set, per language and per whether their article
    was on a topic: real news register, and a pool large enough that unrelated synthetic
    articles share little text (as unrelated real articles do)."""
    pools: dict[tuple[str, bool], list[str]] = {}
    with (ROOT / "tests" / "gold" / "gold.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            sentences = re.split(r"(?<=[.!?])\s+", record["text"])
            key = (record["lang"], bool(record["labels"]))
            pools.setdefault(key, []).extend(s for s in sentences if len(s) > 30)
    return pools


COUNTRIES = {"en": "GB", "de": "DE", "fr": "FR", "ru": "RU", "uk": "UA", "pl": "PL",
             "it": "IT", "es": "ES"}
SOURCES = [
    SourceRef(id=f"bench-{lang}-{i}", type="rss", name=f"Bench {lang} {i}", lang=lang,
              country=country)
    for lang, country in COUNTRIES.items()
    for i in range(12)
]


def _vary(sentence: str, rng: random.Random) -> str:
    """The sentence with every fourth word or so replaced by a number or a name: unrelated
    articles built from one pool of sentences then share about as few word pairs as
    unrelated real articles do."""
    words = sentence.split()
    for _ in range(max(1, len(words) // 4)):
        words[rng.randrange(len(words))] = rng.choice(
            (str(rng.randint(2, 9999)), rng.choice(_NAMES) + rng.choice(_NAMES).lower()))
    return " ".join(words)


_NAMES = ("Adler", "Borys", "Celine", "Dario", "Elena", "Farid", "Greta", "Hugo", "Irena",
          "Jonas", "Kasia", "Lucia", "Marek", "Nadia", "Oskar", "Pavel", "Rita", "Sergio")


def story_count(url: str, prefix: str) -> int:
    """How many stories the articles under index ``prefix`` fall into (distinct story ids;
    exact below the precision threshold)."""
    answer = httpx.post(f"{url}/{prefix}-articles/_search", timeout=60, json={
        "size": 0, "aggs": {"n": {"cardinality": {"field": "story_id",
                                                  "precision_threshold": 40000}}}})
    answer.raise_for_status()
    return int(answer.json()["aggregations"]["n"]["value"])


def synthetic_items(n: int, seed: int = 1) -> list[RawItem]:
    """Articles of 8-20 sentences (about 1.5-3k characters); one in ten rewrites an earlier
    story of the same language (shuffled, one sentence dropped): copies to group."""
    return list(iter_synthetic_items(n, seed))


def iter_synthetic_items(n: int, seed: int = 1) -> Iterator[RawItem]:
    """``synthetic_items`` one at a time, holding only the last hundred (a memory bench must
    not measure the list); one article every 7 seconds of ``first_seen_at``."""
    rng = random.Random(seed)
    pools = sentence_pools()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    items: deque[RawItem] = deque(maxlen=100)
    for i in range(n):
        source = rng.choice(SOURCES)
        pool = pools[(source.lang, rng.random() < TOPICAL_SHARE)]
        earlier = [it for it in items if it.source.lang == source.lang]
        if earlier and rng.random() < 0.1:
            sentences = rng.choice(earlier).summary.split("\n")
            rng.shuffle(sentences)
            body = "\n".join(sentences[:-1])
        else:
            chosen = rng.sample(pool, k=min(len(pool), rng.randint(8, 20)))
            body = "\n".join(_vary(sentence, rng) for sentence in chosen)
        body += f"\n({source.name}, {i})"  # unique text per item, as real articles are
        seen = start + timedelta(seconds=i * 7)
        item = RawItem.make(
            source=source, guid=f"bench-{i}", url=f"https://{source.id}.example/a/{i}",
            title=body.split("\n", 1)[0][:100], summary=body, published_at=seen,
            first_seen_at=seen)
        items.append(item)
        yield item


def produce(kafka: KafkaSettings, items: list[RawItem]) -> float:
    started = time.perf_counter()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all",
                             linger_ms=20, batch_size=256 * 1024)
    for item in items:
        producer.send(kafka.raw_topic, key=item.source.id.encode(), value=item.to_json())
    producer.flush()
    producer.close()
    return time.perf_counter() - started


def context(state: Path, kafka: KafkaSettings, search: SearchSettings) -> RunContext:
    settings = Settings(state_dir=state, topics=ROOT / "config" / "topics.yaml",
                        kafka=kafka, search=search)
    # A webhook-less, console-less channel set: alert evaluation runs, nothing is printed.
    alerts = AlertsConfig(channels={"console": ConsoleChannel()},
                          rules=(AlertRule(name="lrs", topic="long_range_strike", channels=()),
                                 AlertRule(name="troops", topic="troop_deployment",
                                           channels=())))
    return RunContext(settings=settings, alerts=alerts)


def article_documents(items: list[RawItem]) -> list[tuple[str, dict[str, Any]]]:
    """(id, article document) of each item as the pipeline would store it, alone in its
    story: what a plain bulk index writes."""
    docs = []
    for item in items:
        article = normalize_item(item)
        body = f"{article.title}\n{article.text}"
        fp = Fingerprint(article.doc_id, article.story_id, text_hash(body), signature(body),
                         article.first_seen_at.isoformat())
        docs.append((article.doc_id, article_document(Placed(article, fp, None),
                                                      datetime.now(UTC))))
    return docs


def raw_bulk_rate(items: list[RawItem], search: SearchSettings) -> float:
    """Documents per second for a plain bulk index of the same documents (the limit)."""
    docs = article_documents(items)
    store = open_store(search, Path(tempfile.mkdtemp()))
    store.setup()
    started = time.perf_counter()
    for i in range(0, len(docs), search.bulk_batch_size):
        failures = store.bulk_write("articles", docs[i : i + search.bulk_batch_size])
        assert not failures, failures[:1]
    elapsed = time.perf_counter() - started
    return len(docs) / elapsed


def worker_options(workers: int) -> list[str]:
    """Pipeline options for ``--workers``."""
    # PrismRunner's binary and loopback workers come from pipeline_options (find_prism).
    extra: list[str] = []
    if workers > 1:
        extra += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return extra


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process (the driver, which is the worker on FnApiRunner
    in-process) and of its largest waited-for child (a multi-processing worker)."""
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--backend", choices=["elasticsearch", "opensearch"],
                        default="elasticsearch")
    parser.add_argument("--runner", default="FnApiRunner",
                        choices=["FnApiRunner", "DirectRunner", "PrismRunner"],
                        help="the batch part's runner; the stream part always runs on Prism "
                             "($NEWSMON_PRISM, .venv/bin/prism or PATH)")
    parser.add_argument("--workers", type=int, default=1,
                        help="more than 1: direct_num_workers with multi_processing")
    parser.add_argument("--latency-samples", type=int, default=40,
                        help="0 skips the stream-latency part")
    parser.add_argument("--json", action="store_true",
                        help="print the figures as one JSON object on the last line")
    args = parser.parse_args()
    extra = worker_options(args.workers)

    url = os.environ[f"NEWSMON_{args.backend.upper()}_URL"]
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=os.environ["NEWSMON_KAFKA_BOOTSTRAP"],
                          raw_topic=f"bench-raw-{tag}", dead_letter_topic=f"bench-dead-{tag}",
                          group_id=f"bench-{tag}")
    search = SearchSettings(backend=args.backend, url=url, index_prefix=f"bench{tag}")
    items = synthetic_items(args.articles)
    chars = sum(len(i.summary) for i in items) / len(items)
    print(f"{len(items)} synthetic articles, mean {chars:.0f} characters; server {args.backend}; "
          f"runner {args.runner}, {args.workers} worker(s)")

    produced = produce(kafka, items)
    print(f"produced to Kafka in {produced:.1f}s ({len(items) / produced:,.0f}/s)")

    ctx = context(Path(tempfile.mkdtemp()), kafka, search)
    started, cpu = time.perf_counter(), time.process_time()
    summary = run_kafka_batch(ctx, runner=args.runner, extra_options=extra)
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
    rss = peak_rss_mb()
    store = open_store(search, ctx.settings.state_dir)
    store.refresh("articles")
    rate = summary.records / elapsed
    stories = story_count(url, search.index_prefix)
    print(f"pipeline batch: {summary.records} records in {elapsed:.1f}s = "
          f"{rate:,.0f} articles/s (driver process CPU {cpu_used:.1f}s); "
          f"{store.count('articles')} documents, {stories} stories, "
          f"{store.count('alerts')} alerts; "
          f"peak RSS {rss['self']:.0f} MB (driver), {rss['children']:.0f} MB (largest child)")

    baseline = raw_bulk_rate(
        items, search.model_copy(update={"index_prefix": f"benchraw{tag}"}))
    print(f"baseline raw bulk index of the same documents: {baseline:,.0f} docs/s; "
          f"pipeline/raw {rate / baseline:.3f}x")

    p50 = p95 = None
    if args.latency_samples > 0:
        stream_ctx = context(Path(tempfile.mkdtemp()), kafka.model_copy(
            update={"raw_topic": f"bench-stream-{tag}", "group_id": f"bench-stream-{tag}"}),
            search.model_copy(update={"index_prefix": f"benchstream{tag}"}))
        warm_up, *samples = [item.model_copy(update={"url": item.url + "-stream"})
                             for item in synthetic_items(args.latency_samples + 1, seed=99)]
        # The pipeline's start (Prism, workers, first connections) is not latency: the clock
        # starts once a warm-up item produced before the stream is searchable.
        ensure_topics(stream_ctx.settings.kafka)  # as the stream lays them out, before a write
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        producer.send(stream_ctx.settings.kafka.raw_topic, key=b"warm-up",
                      value=warm_up.to_json())
        producer.close()
        # Stream mode runs on Prism whatever --runner says: FnApiRunner runs a stage to its
        # end before the next, and an unbounded read never ends (docs/pipeline.md).
        latencies = searchable_latencies(
            stream_ctx, samples, interval_s=0.2, runner="PrismRunner",
            ready=lambda: url_is_searchable(stream_ctx, warm_up.url))
        p50, p95 = p50_p95(latencies)
        print(f"stream latency produce->searchable over {len(latencies)} items: "
              f"p50 {p50:.2f}s, p95 {p95:.2f}s, max {max(latencies):.2f}s")
    for prefix in (f"bench{tag}", f"benchraw{tag}", f"benchstream{tag}"):
        httpx.delete(f"{url}/{prefix}-*", timeout=60)
    if args.json:
        print(json.dumps({
            "articles": summary.records, "articles_per_s": round(rate, 1),
            "raw_bulk_per_s": round(baseline, 1), "ratio": round(rate / baseline, 4),
            "stream_p50_s": None if p50 is None else round(p50, 3),
            "stream_p95_s": None if p95 is None else round(p95, 3),
            "stories": stories,
            "runner": args.runner, "stream_runner": "PrismRunner", "workers": args.workers,
            "peak_rss_mb": round(max(rss.values()), 1),
            "driver_cpu_s": round(cpu_used, 1), "elapsed_s": round(elapsed, 1)}))


if __name__ == "__main__":
    main()
