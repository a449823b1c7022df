"""Batch throughput of 1, 2 and 4 pipeline processes sharing the raw topic (`--worker i/M`).

    set -a; . ./.services/env; set +a
    .venv/bin/python bench/bench_workers.py --articles 3000 --workers 1 2 4 --json

For each M: the same N synthetic articles (bench_pipeline.py's) are produced to a fresh
6-partition topic; M processes ``run_kafka_batch(share=i/M)`` at once, each with its own
state directory and one consumer group between them, into a fresh index prefix. Measured:

- wall time from the start of the first process to the end of the last (Beam's start-up in
  each process included: a worker pays it too) and articles per second;
- CPU seconds of the M processes, of the Kafka broker and of the search server (found by
  their listening ports, read from /proc), and of the whole machine, over the same window:
  where the limit lies;
- the documents, stories and alerts the M processes made. Each process has its own in-run
  story index, so copies of one story read by two processes before either copy is searchable
  start two stories; MergeStories (pipeline/story_merge.py) joins them again once written,
  so the counts should be (nearly) those of one process (docs/scaling.md says how near).
  ``alerts_on_merged_stories``: the alerts of stories merged away after both parts alerted
  (kept: both messages went out); the alerts less these are one per rule and story.

``--layout cluster`` uses ``NEWSMON_KAFKA_CLUSTER_BOOTSTRAP`` and
``NEWSMON_ELASTICSEARCH_CLUSTER_URL`` instead. ``--json`` ends the output with one JSON
object: per M, ``articles_per_s`` and the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from bench_pipeline import context, produce, story_count, synthetic_items

from newsmon.config import KafkaSettings, SearchSettings
from newsmon.models import RawItem
from newsmon.pipeline.io_kafka import WorkerShare, ensure_topics
from newsmon.pipeline.jobs import run_kafka_batch
from newsmon.pipeline.store import open_store

LAYOUTS = {
    "single": ("NEWSMON_KAFKA_BOOTSTRAP", "NEWSMON_ELASTICSEARCH_URL"),
    "cluster": ("NEWSMON_KAFKA_CLUSTER_BOOTSTRAP", "NEWSMON_ELASTICSEARCH_CLUSTER_URL"),
}
TICK = os.sysconf("SC_CLK_TCK")


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on 127.0.0.1:``port`` (``ss``), None if not ours."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True,
                         text=True, check=False).stdout
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICK, sum(values) / TICK


def server_pids(kafka: KafkaSettings, url: str) -> dict[str, int]:
    """name -> pid of every broker of the bootstrap list and every search node (all of
    ``NEWSMON_ELASTICSEARCH_CLUSTER_URLS`` when ``url`` is the cluster's)."""
    urls = os.environ.get("NEWSMON_ELASTICSEARCH_CLUSTER_URLS", "").split(",")
    nodes = urls if url in urls else [url]
    pids = {}
    for name, addresses in (("kafka", kafka.bootstrap_servers.split(",")),
                            ("search", [urlsplit(u).netloc for u in nodes])):
        for n, address in enumerate(addresses, 1):
            pid = listening_pid(int(address.rsplit(":", 1)[1]))
            if pid is not None:
                pids[f"{name}-{n}" if len(addresses) > 1 else name] = pid
    return pids


def child(args: argparse.Namespace) -> None:
    """One worker: run the batch over its share, print one JSON line."""
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap, raw_topic=args.topic,
                          dead_letter_topic=f"{args.topic}-dead", group_id=args.group)
    search = SearchSettings(backend="elasticsearch", url=args.url, index_prefix=args.prefix)
    # The articles' clock, not today's: alert windows count back from it.
    ctx = dataclasses.replace(context(Path(tempfile.mkdtemp()), kafka, search),
                              now=datetime.fromisoformat(args.now))
    started, cpu = time.perf_counter(), time.process_time()
    summary = run_kafka_batch(ctx, share=WorkerShare.parse(args.child))
    print(json.dumps({"worker": args.child, "records": summary.records,
                      "partitions": [r.partition for r in summary.ranges],
                      "seconds": time.perf_counter() - started,
                      "cpu_s": time.process_time() - cpu}), flush=True)


def articles_clock(items: list[RawItem]) -> str:
    """The time just after the newest article was first seen (ISO), the run's "now"."""
    return (max(i.first_seen_at for i in items) + timedelta(minutes=1)).isoformat()


def run_workers(m: int, items: list[RawItem], kafka_env: str, url: str) -> dict[str, object]:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=kafka_env, raw_topic=f"bench-workers-{tag}",
                          dead_letter_topic=f"bench-workers-{tag}-dead",
                          group_id=f"bench-workers-{tag}")
    ensure_topics(kafka)
    produce(kafka, items)
    prefix = f"benchw{tag}"
    pids = server_pids(kafka, url)
    servers_before = {name: process_cpu_s(pid) for name, pid in pids.items()}
    busy_before, total_before = machine_busy_s()
    started = time.perf_counter()
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--child", f"{i}/{m}", "--bootstrap", kafka_env,
         "--topic", kafka.raw_topic, "--group", kafka.group_id, "--url", url,
         "--prefix", prefix, "--now", articles_clock(items)],
        stdout=subprocess.PIPE, text=True) for i in range(m)]
    workers = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a worker failed (exit {proc.returncode})")
        workers.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.perf_counter() - started
    busy_after, total_after = machine_busy_s()
    servers = {name: round(process_cpu_s(pid) - servers_before[name], 1)
               for name, pid in pids.items()}
    records = sum(int(w["records"]) for w in workers)
    store = open_store(SearchSettings(backend="elasticsearch", url=url, index_prefix=prefix),
                       Path(tempfile.mkdtemp()))
    for kind in ("articles", "alerts"):
        store.refresh(kind)
    result: dict[str, object] = {
        "workers": m, "records": records, "seconds": round(elapsed, 1),
        "articles_per_s": round(records / elapsed, 1),
        "worker_cpu_s": round(sum(float(w["cpu_s"]) for w in workers), 1),
        "worker_seconds": [round(float(w["seconds"]), 1) for w in workers],
        "worker_records": [w["records"] for w in workers],
        "server_cpu_s": servers,
        "machine_busy_share": round((busy_after - busy_before)
                                    / max(1e-9, total_after - total_before), 2),
        "documents": store.count("articles"), "alerts": store.count("alerts"),
        "stories": story_count(url, prefix),
        "alerts_on_merged_stories": alerts_on_merged_stories(url, prefix),
    }
    store.close()
    httpx.delete(f"{url}/{prefix}-*", timeout=60)
    return result


def alerts_on_merged_stories(url: str, prefix: str) -> int:
    """How many alerts name a story no article is in any more: the loser's alert of a merge
    where both stories had alerted (both messages went out; both alerts stay)."""
    alerts = httpx.post(f"{url}/{prefix}-alerts/_search", timeout=60, json={
        "size": 10_000, "_source": ["story_id"]})
    alerts.raise_for_status()
    stories = sorted({h["_source"]["story_id"] for h in alerts.json()["hits"]["hits"]})
    if not stories:
        return 0
    live = httpx.post(f"{url}/{prefix}-articles/_search", timeout=60, json={
        "size": 0, "query": {"terms": {"story_id": stories}},
        "aggs": {"s": {"terms": {"field": "story_id", "size": len(stories)}}}})
    live.raise_for_status()
    found = {b["key"] for b in live.json()["aggregations"]["s"]["buckets"]}
    return sum(1 for h in alerts.json()["hits"]["hits"] if h["_source"]["story_id"] not in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--layout", choices=list(LAYOUTS), default="single")
    parser.add_argument("--json", action="store_true",
                        help="print the figures as one JSON object on the last line")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("--bootstrap", "--topic", "--group", "--url", "--prefix", "--now"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    kafka_key, es_key = LAYOUTS[args.layout]
    kafka_env, url = os.environ[kafka_key], os.environ[es_key]
    items = synthetic_items(args.articles)
    print(f"{len(items)} synthetic articles, 6 partitions, layout {args.layout}, "
          f"{os.cpu_count()} cores", flush=True)
    results = []
    for m in args.workers:
        r = run_workers(m, items, kafka_env, url)
        results.append(r)
        print(f"{m} worker(s): {r['records']} records in {r['seconds']} s = "
              f"{r['articles_per_s']}/s; CPU s: workers {r['worker_cpu_s']}, servers "
              f"{r['server_cpu_s']}, machine busy {r['machine_busy_share']:.0%}; "
              f"{r['documents']} documents, {r['stories']} stories, {r['alerts']} alerts "
              f"({r['alerts_on_merged_stories']} on a merged-away story); "
              f"per worker {r['worker_records']} records in {r['worker_seconds']} s",
              flush=True)
    if args.json:
        print(json.dumps({"articles": len(items), "layout": args.layout,
                          "runs": results}))


if __name__ == "__main__":
    main()
