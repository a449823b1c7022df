"""Backfill's memory: peak RSS of reading an N-line connector archive into the pipeline, the
splittable text read of ``ReadArchive`` against the old way (every line into a list, then
``beam.Create``), each in a fresh process so one's peak cannot hide the other's.

    .venv/bin/python bench/bench_backfill.py [--lines 1000000] [--json]

Only the read is measured (records counted by a Beam counter), not the stages after it: a
million articles through classification would take hours on a 2-core machine, and what the
old way got wrong was holding the archive, which the read alone shows. The lines are
synthetic RawItem JSON of about 600 bytes, like a short article's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apache_beam as beam

from newsmon.pipeline.app import pipeline_options
from newsmon.pipeline.io_kafka import RawRecord
from newsmon.pipeline.jobs import ReadArchive


def write_archive(path: Path, lines: int) -> None:
    filler = "Officials said the talks would continue next week. " * 8
    with path.open("w", encoding="utf-8") as fh:
        for n in range(lines):
            fh.write(json.dumps({"item_id": f"{n:012x}", "source": {"id": "bench"},
                                 "url": f"https://bench.example/{n}", "title": f"Story {n}",
                                 "summary": filler}) + "\n")


def read_old(path: Path) -> list[RawRecord]:
    """The old backfill's read: the whole archive in a list, handed to ``beam.Create``."""
    with path.open("rb") as fh:
        return [RawRecord("archive", line.strip(), path.name) for line in fh if line.strip()]


def run(way: str, path: Path) -> dict[str, float]:
    """One read in this process: seconds, records and this process's peak RSS."""
    started = time.perf_counter()
    seen = beam.metrics.Metrics.counter("bench", "records")
    p = beam.Pipeline(options=pipeline_options("FnApiRunner"))
    records = (p | "Old" >> beam.Create(read_old(path)) if way == "old"
               else p | "New" >> ReadArchive(path))
    _ = records | beam.Map(lambda _record: seen.inc())
    result = p.run()
    result.wait_until_finish()
    (counter,) = result.metrics().query(
        beam.metrics.MetricsFilter().with_name("records"))["counters"]
    return {"seconds": round(time.perf_counter() - started, 1), "records": counter.committed,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true",
                        help="print the figures as one JSON object on the last line")
    parser.add_argument("--child", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child[0], Path(args.child[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "archive.jsonl"
        write_archive(path, args.lines)
        size_mb = path.stat().st_size / 2**20
        print(f"archive: {args.lines:,} lines, {size_mb:,.0f} MB")
        figures = {}
        for way in ("new", "old"):
            out = subprocess.run([sys.executable, __file__, "--child", way, str(path)],
                                 capture_output=True, text=True, check=True)
            figures[way] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{way:>3}: {figures[way]['records']:,} records in "
                  f"{figures[way]['seconds']} s, peak RSS {figures[way]['peak_rss_mb']:,} MB")
    if args.json:
        print(json.dumps({"lines": args.lines, "archive_mb": round(size_mb, 1),
                          "new_peak_rss_mb": figures["new"]["peak_rss_mb"],
                          "old_peak_rss_mb": figures["old"]["peak_rss_mb"],
                          "new_s": figures["new"]["seconds"], "old_s": figures["old"]["seconds"]}))


if __name__ == "__main__":
    main()
