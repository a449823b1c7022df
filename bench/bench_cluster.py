"""Per-item costs on one broker and one search node, and on the three-node clusters.

    set -a; . ./.services/env; . ./.services-cluster/env; set +a
    .venv/bin/python bench/bench_cluster.py --articles 20000 --pipeline-articles 3000

For each layout (single: ``NEWSMON_KAFKA_BOOTSTRAP`` and ``NEWSMON_ELASTICSEARCH_URL``;
cluster: ``NEWSMON_KAFKA_CLUSTER_BOOTSTRAP`` and ``NEWSMON_ELASTICSEARCH_CLUSTER_URL``) and
the same synthetic articles as bench_pipeline.py:

1. produce N items with ``acks=all`` to a fresh topic laid out by ``newsmon pipeline topics``'
   rules (one copy on one broker; 3 replicas, min.insync.replicas 2 on three);
2. bulk-index N article documents into indices laid out by ``newsmon search setup`` (no
   replica on one node, one on three);
3. run the batch pipeline end to end on the first M of them (FnApiRunner, one worker).

Each line gives items per second and milliseconds per item, the inputs of docs/scaling.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from bench_pipeline import context, produce, raw_bulk_rate, synthetic_items

from newsmon.config import KafkaSettings, SearchSettings
from newsmon.pipeline.io_kafka import ensure_topics
from newsmon.pipeline.jobs import run_kafka_batch

LAYOUTS = {
    "single": ("NEWSMON_KAFKA_BOOTSTRAP", "NEWSMON_ELASTICSEARCH_URL"),
    "cluster": ("NEWSMON_KAFKA_CLUSTER_BOOTSTRAP", "NEWSMON_ELASTICSEARCH_CLUSTER_URL"),
}


def line(layout: str, what: str, n: int, seconds: float) -> None:
    print(f"{layout:8s} {what:34s} {n:6d} items {seconds:7.1f} s {n / seconds:8,.0f}/s "
          f"{1000 * seconds / n:7.2f} ms/item", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--pipeline-articles", type=int, default=3_000)
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    args = parser.parse_args()
    items = synthetic_items(args.articles)
    for layout in args.layouts:
        kafka_key, es_key = LAYOUTS[layout]
        url = os.environ[es_key]
        tag = uuid.uuid4().hex[:8]
        kafka = KafkaSettings(bootstrap_servers=os.environ[kafka_key],
                              raw_topic=f"bench-raw-{tag}", dead_letter_topic=f"bench-dead-{tag}",
                              group_id=f"bench-{tag}")
        search = SearchSettings(backend="elasticsearch", url=url, index_prefix=f"bench{tag}")
        for said in ensure_topics(kafka):
            print(f"{layout:8s} {said}")
        line(layout, "produce (acks=all)", len(items), produce(kafka, items))
        rate = raw_bulk_rate(items, search.model_copy(update={"index_prefix": f"benchraw{tag}"}))
        line(layout, "bulk index (no pipeline)", len(items), len(items) / rate)

        pipe = kafka.model_copy(update={"raw_topic": f"bench-pipe-{tag}"})
        ensure_topics(pipe)
        produce(pipe, items[: args.pipeline_articles])
        ctx = context(Path(tempfile.mkdtemp()), pipe, search)
        started, cpu = time.perf_counter(), time.process_time()
        summary = run_kafka_batch(ctx)
        elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
        line(layout, "pipeline batch end to end", summary.records, elapsed)
        print(f"{layout:8s} pipeline driver process CPU {cpu_used:.1f} s "
              f"({1000 * cpu_used / max(1, summary.records):.2f} ms/item)", flush=True)
        for prefix in (f"bench{tag}", f"benchraw{tag}"):
            httpx.delete(f"{url}/{prefix}-*", timeout=60)
        time.sleep(1)


if __name__ == "__main__":
    main()
