"""The load run that checks docs/scaling.md's capacity model: each step's prediction beside
what it measures, bounded in time.

    set -a; . ./.services-cluster/env; set +a
    .venv/bin/python bench/bench_load.py --json      # or `make load-run`

1. poll: bench_poll.py's local server with ``--feeds`` RSS feeds (20 items each) answering
   after ``--latency-ms``, polled by one Poller process with ``--concurrency`` threads, a
   cold pass (every feed 200, every item new) then a warm one (half 304);
2. produce: ``--articles`` items (1 M) to a fresh raw topic on the 3-broker cluster,
   ``acks=all``, one producer (copies of 5,000 synthetic articles with their own guids),
   stopped after ``--produce-seconds`` if it has not finished;
3. bulk: the same number of article documents bulk-indexed into the 3-node search cluster
   (one replica), stopped after ``--bulk-seconds``: the rate, and the time 1 M would take;
4. pipeline: ``--pipeline-articles`` distinct synthetic articles through the batch pipeline,
   ``--pipeline-workers`` processes sharing the partitions (bench_workers.py).

The model's inputs are the per-item costs of docs/scaling.md, written once below. ``--json``
ends the output with one JSON object of the predictions and the measures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from bench_pipeline import article_documents, synthetic_items
from bench_workers import run_workers
from kafka import KafkaProducer

from newsmon.config import KafkaSettings, SearchSettings
from newsmon.pipeline.io_kafka import ensure_topics
from newsmon.pipeline.store import open_store

HERE = Path(__file__).resolve().parent

#: docs/scaling.md's per-item costs, the model's only inputs.
MODEL = {
    "poll_cold_cpu_s": 0.013,     # a feed answering 200 with 20 new items
    "poll_warm_cpu_s": 0.0072,    # the warm mix: half 304, half 200 with 5 new items
    "produce_cluster_s": 0.00043,  # one item, acks=all, RF 3, one producer
    "bulk_cluster_s": 0.00201,    # one article document, 3 nodes, one replica
    "pipeline_cluster_s": 0.0203,  # one article end to end, one worker, on the clusters
}
BASE_ARTICLES = 5000


def poll_rate(cpu_s: float, concurrency: int, latency_s: float) -> float:
    """Feeds per second of one poller process: its threads wait out the latency side by
    side, and its CPU work runs on one core (the GIL); the slower of the two sets the rate."""
    return min(concurrency / (latency_s + cpu_s), 1 / cpu_s)


def step_poll(args: argparse.Namespace) -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, str(HERE / "bench_poll.py"), "--feeds", str(args.feeds),
         "--latency-ms", str(args.latency_ms), "--concurrency", str(args.concurrency),
         "--no-naive"], capture_output=True, text=True, check=True).stdout
    print(out, end="", flush=True)
    rows = []
    for label, key in (("cold", "poll_cold_cpu_s"), ("warm", "poll_warm_cpu_s")):
        found = re.search(rf"Poller, {label}.*?([\d.]+) s\s+([\d.]+) feeds/s\s+CPU\s+([\d.]+) s",
                          out)
        assert found, out
        seconds, _, cpu = map(float, found.groups())
        predicted = args.feeds / poll_rate(MODEL[key], args.concurrency,
                                           args.latency_ms / 1000)
        rows.append({"step": f"poll {args.feeds} feeds, {args.latency_ms:g} ms latency, "
                             f"{args.concurrency} threads, {label} pass",
                     "predicted_s": round(predicted, 1), "measured_s": seconds,
                     "measured_cpu_s": cpu,
                     "measured_cpu_per_feed_ms": round(1000 * cpu / args.feeds, 2)})
    return rows


def base_items() -> list[bytes]:
    return [item.to_json() for item in synthetic_items(BASE_ARTICLES)]


def step_produce(args: argparse.Namespace, kafka_env: str, base: list[bytes]) -> dict[str, object]:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=kafka_env, raw_topic=f"load-raw-{tag}",
                          dead_letter_topic=f"load-dead-{tag}", group_id=f"load-{tag}")
    for said in ensure_topics(kafka):
        print(f"produce: {said}", flush=True)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all",
                             linger_ms=20, batch_size=256 * 1024)
    started = time.perf_counter()
    sent = 0
    for n in range(args.articles):
        if n % 10_000 == 0 and time.perf_counter() - started > args.produce_seconds:
            break
        copy, i = divmod(n, len(base))
        # Its own guid per copy: the copies are distinct messages, keyed over every partition.
        producer.send(kafka.raw_topic, key=f"load-{i % 96}".encode(),
                      value=base[i].replace(b'"bench-', f'"c{copy}-'.encode(), 1))
        sent = n + 1
    producer.flush()
    producer.close()
    seconds = time.perf_counter() - started
    return {"step": f"produce items to 3 brokers (acks=all, RF 3), at most "
                    f"{args.produce_seconds:g} s of the {args.articles:,}",
            "predicted_s": round(sent * MODEL["produce_cluster_s"], 1),
            "measured_s": round(seconds, 1), "items": sent, "per_s": round(sent / seconds),
            "predicted_s_for_all": round(args.articles * MODEL["produce_cluster_s"]),
            "measured_s_for_all": round(args.articles * seconds / sent)}


def step_bulk(args: argparse.Namespace, url: str) -> dict[str, object]:
    docs = article_documents(synthetic_items(BASE_ARTICLES, seed=2))
    search = SearchSettings(backend="elasticsearch", url=url,
                            index_prefix=f"loadbulk{uuid.uuid4().hex[:8]}")
    store = open_store(search, Path(tempfile.mkdtemp()))
    store.setup()
    written, batch = 0, search.bulk_batch_size
    started = time.perf_counter()
    while written < args.articles and time.perf_counter() - started < args.bulk_seconds:
        copy, i = divmod(written, len(docs))
        chunk = [(f"{doc_id}-{copy}", doc) for doc_id, doc in docs[i:i + batch]]
        failures = store.bulk_write("articles", chunk)
        assert not failures, failures[:1]
        written += len(chunk)
    seconds = time.perf_counter() - started
    store.close()
    httpx.delete(f"{url}/{search.index_prefix}-*", timeout=120)
    return {"step": f"bulk-index article documents into 3 nodes (1 replica), "
                    f"{args.bulk_seconds:g} s of the {args.articles:,}",
            "predicted_s": round(written * MODEL["bulk_cluster_s"], 1),
            "measured_s": round(seconds, 1), "items": written,
            "per_s": round(written / seconds),
            "predicted_s_for_all": round(args.articles * MODEL["bulk_cluster_s"]),
            "measured_s_for_all": round(args.articles * seconds / written)}


def step_pipeline(args: argparse.Namespace, kafka_env: str, url: str) -> dict[str, object]:
    items = synthetic_items(args.pipeline_articles, seed=3)
    run = run_workers(args.pipeline_workers, items, kafka_env, url)
    return {"step": f"pipeline batch, {args.pipeline_articles:,} articles, "
                    f"{args.pipeline_workers} worker(s), on the clusters",
            "predicted_s": round(args.pipeline_articles * MODEL["pipeline_cluster_s"], 1),
            "measured_s": run["seconds"], "items": run["records"],
            "per_s": run["articles_per_s"], "run": run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", nargs="+", default=["poll", "produce", "bulk", "pipeline"],
                        choices=["poll", "produce", "bulk", "pipeline"])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--produce-seconds", type=float, default=900)
    parser.add_argument("--bulk-seconds", type=float, default=300)
    parser.add_argument("--pipeline-articles", type=int, default=20_000)
    parser.add_argument("--pipeline-workers", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kafka_env = os.environ.get("NEWSMON_KAFKA_CLUSTER_BOOTSTRAP", "")
    url = os.environ.get("NEWSMON_ELASTICSEARCH_CLUSTER_URL", "")
    if {"produce", "bulk", "pipeline"} & set(args.steps) and not (kafka_env and url):
        raise SystemExit("the cluster steps need NEWSMON_KAFKA_CLUSTER_BOOTSTRAP and "
                         "NEWSMON_ELASTICSEARCH_CLUSTER_URL (services.sh start clusters)")
    rows: list[dict[str, object]] = []
    for step in args.steps:
        started = time.perf_counter()
        if step == "poll":
            rows += step_poll(args)
        elif step == "produce":
            rows.append(step_produce(args, kafka_env, base_items()))
        elif step == "bulk":
            rows.append(step_bulk(args, url))
        else:
            rows.append(step_pipeline(args, kafka_env, url))
        for row in rows[-2 if step == "poll" else -1:]:
            print(f"{row['step']}: model {row['predicted_s']} s, run {row['measured_s']} s "
                  f"({ {k: v for k, v in row.items() if k not in ('step', 'run')} })",
                  flush=True)
        print(f"step {step} took {time.perf_counter() - started:.0f} s", flush=True)
    if args.json:
        print(json.dumps({"model": MODEL, "rows": rows}))


if __name__ == "__main__":
    main()
