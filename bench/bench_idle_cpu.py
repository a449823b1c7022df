"""CPU an idle ``newsmon pipeline run --mode stream`` burns on Prism (docs/benchmarks.md,
"Stream latency", "Idle CPU").

Starts the real command in a session of its own (so Prism and its SDK workers are in its
process group) on fresh topic and index names of the shared Kafka and Elasticsearch, lets it
settle, then reads ``utime + stime`` from ``/proc/PID/stat`` of every process of the group at
the start and the end of the window: the CPU they used while nothing was produced, per
process name, as a share of one core. The last line with ``--json`` is one JSON object.

    set -a; . /work/wt/services.env; set +a
    .venv/bin/python bench/bench_idle_cpu.py --settle 40 --window 60 --json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
NEWSMON = Path(sys.executable).parent / "newsmon"
TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu(pgid: int) -> dict[int, tuple[str, float]]:
    """pid -> (name, CPU seconds so far) of every live process in process group ``pgid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # The name is in parentheses and may hold spaces: split after the last ')'.
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:  # field 5, pgrp
            found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=40.0,
                        help="seconds after the articles index appears before measuring")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    kafka = os.environ["NEWSMON_KAFKA_BOOTSTRAP"]
    es_url = os.environ["NEWSMON_ELASTICSEARCH_URL"]
    tag = uuid.uuid4().hex[:8]
    prefix = f"idle{tag}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "feeds.yaml").write_text("sources: []\n")
        config = work / "newsmon.yaml"
        config.write_text(f"state_dir: {work / 'state'}\nfeeds: feeds.yaml\n"
                          f"topics: {ROOT / 'config' / 'topics.yaml'}\n"
                          f"alerts: {ROOT / 'config' / 'alerts.yaml'}\n")
        env = {**os.environ, "HOME": str(work),
               "NEWSMON_KAFKA__BOOTSTRAP_SERVERS": kafka,
               "NEWSMON_KAFKA__RAW_TOPIC": f"idle-raw-{tag}",
               "NEWSMON_KAFKA__DEAD_LETTER_TOPIC": f"idle-dead-{tag}",
               "NEWSMON_KAFKA__GROUP_ID": f"idle-group-{tag}",
               "NEWSMON_SEARCH__BACKEND": "elasticsearch", "NEWSMON_SEARCH__URL": es_url,
               "NEWSMON_SEARCH__INDEX_PREFIX": prefix}
        subprocess.run([str(NEWSMON), "pipeline", "topics", "--no-shard-topics", "-c",
                        str(config)], env=env, check=True, capture_output=True)
        log = (work / "stream.log").open("wb")
        run = subprocess.Popen([str(NEWSMON), "pipeline", "run", "--mode", "stream", "-c",
                                str(config)], env=env, stdout=log, stderr=log,
                               start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while httpx.head(f"{es_url}/{prefix}-articles").status_code != 200:
                if run.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the stream did not start:\n"
                                     + (work / "stream.log").read_text()[-3000:])
                time.sleep(0.5)
            time.sleep(args.settle)
            before = group_cpu(run.pid)
            started = time.monotonic()
            time.sleep(args.window)
            after = group_cpu(run.pid)
            wall = time.monotonic() - started
            if run.poll() is not None:
                raise SystemExit("the stream ended while measured:\n"
                                 + (work / "stream.log").read_text()[-3000:])
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGTERM)
                try:
                    run.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(run.pid, signal.SIGKILL)
            httpx.delete(f"{es_url}/{prefix}-*", timeout=30)
    per_name: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        per_name[name] = per_name.get(name, 0.0) + cpu - before.get(pid, (name, 0.0))[1]
    shares = {name: round(100 * cpu / wall, 1) for name, cpu in sorted(per_name.items())}
    total = round(sum(per_name.values()) / wall * 100, 1)
    for name, share in shares.items():
        print(f"{name}: {share}% of a core")
    print(f"total: {total}% of a core over {wall:.0f} s idle")
    if args.json:
        print(json.dumps({"idle_cpu_percent": total, "per_process": shares,
                          "window_s": round(wall, 1)}))


if __name__ == "__main__":
    main()
