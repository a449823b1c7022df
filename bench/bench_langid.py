"""Language identification: accuracy on labelled files and speed, alone and with classification.

    .venv/bin/python bench/bench_langid.py [FILE.jsonl ...]

Accuracy: ``detect_language(title + text)`` against the ``lang`` field of every record (by
default ../shared/eval/dev.jsonl, dev2.jsonl and tests/gold/**.jsonl), per language, with what
the misses were read as ("und" is an honest "cannot tell"). Speed, on one core: texts per second
for ``detect_language`` alone, and for the classification path of the pipeline, language id
then ``Classifier.classify``, over the same records. Pure CPU.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

from newsmon.languages import detect_language
from newsmon.pipeline.detection import Classifier
from newsmon.pipeline.detection.evaluation import read_records

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NEWSMON_SHARED_DIR") or REPO.parent / "shared")


def best_of(runs: int, work: list[str], step: object) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for text in work:
            step(text)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return len(work) / best


def main(paths: list[Path]) -> None:
    records = [r for path in paths for r in read_records(path) if r.lang]
    texts = [f"{r.title}\n{r.text}" if r.title else r.text for r in records]
    detect_language(texts[0])  # load the model outside the timing
    right: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    misread: Counter[tuple[str, str]] = Counter()
    for record, text in zip(records, texts, strict=True):
        got = detect_language(text)
        seen[record.lang] += 1
        if got == record.lang:
            right[record.lang] += 1
        else:
            misread[(record.lang, got)] += 1
    total = sum(right.values())
    print(f"accuracy {total}/{len(records)} = {total / len(records):.3f}")
    print(" ".join(f"{lang}:{right[lang]}/{seen[lang]}" for lang in sorted(seen)))
    print("misread:", ", ".join(f"{a}->{b} x{n}" for (a, b), n in misread.most_common()) or "-")
    classifier = Classifier.from_path(REPO / "config" / "topics.yaml")
    alone = best_of(3, texts, detect_language)
    path = best_of(3, texts, lambda t: classifier.classify(t, detect_language(t)))
    print(f"detect_language {alone:,.0f} texts/s; language id + classify {path:,.0f} texts/s")


if __name__ == "__main__":
    given = [Path(p) for p in sys.argv[1:]]
    defaults = [SHARED / "eval" / "dev.jsonl", SHARED / "eval" / "dev2.jsonl",
                *sorted((REPO / "tests" / "gold").rglob("*.jsonl"))]
    main(given or [p for p in defaults if p.exists()])
