"""Peak memory of one pipeline worker's per-article work over a long batch.

    .venv/bin/python bench/bench_worker_memory.py --articles 50000 [--horizon-days 2] [--json]

Runs, article by article and without Beam or I/O, what a worker holds on to: decode and
normalize (language id), classify, fingerprint (MinHash, story features), decide the story
against the run's in-memory ``StoryIndex`` and file the article in it, on the synthetic
articles of ``bench_pipeline.py`` (one every 7 seconds of article time, so 50,000 span four
days). Prints the peak RSS (``ru_maxrss``) after set-up and at the end, the fingerprints the
index holds, and process CPU per article. ``--horizon-days 0`` keeps every fingerprint (the
index before it was bounded); the default is the pipeline's ``stories.INDEX_HORIZON``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from newsmon.pipeline.detection import Classifier
from newsmon.pipeline.normalize import normalize_item
from newsmon.pipeline.stages.store import fingerprint
from newsmon.pipeline.stories import INDEX_HORIZON, StoryIndex, decide_story
from newsmon.pipeline.story import StoryMatcher

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_pipeline import iter_synthetic_items  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--horizon-days", type=float, default=INDEX_HORIZON / timedelta(days=1),
                        help="0 keeps every fingerprint of the run")
    parser.add_argument("--no-decide", action="store_true",
                        help="file every article as its own story without deciding it: the "
                             "index holds the same fingerprints, and the run stays linear "
                             "(without a horizon, deciding costs more with every article)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    horizon = timedelta(days=args.horizon_days) if args.horizon_days > 0 else None

    classifier = Classifier.from_path(ROOT / "config" / "topics.yaml")
    matcher = StoryMatcher(classifier)
    index = StoryIndex(horizon=horizon)
    items = iter_synthetic_items(args.articles)
    setup_rss = peak_rss_mb()
    cpu = time.process_time()
    joined = 0
    decisions = hashlib.sha256()  # the grouping, to compare two horizons
    for n, item in enumerate(items, 1):
        article = normalize_item(item)
        result = classifier.classify(article.text, article.lang, title=article.title)
        article = article.model_copy(update={"topics": result.topics,
                                             "entities": result.entities})
        fp = fingerprint(matcher, article)
        if not args.no_decide:
            decision = decide_story(fp, index.candidates(fp))
            joined += decision.story_id != fp.story_id
            decisions.update(f"{fp.doc_id} {decision.story_id}\n".encode())
            fp = replace(fp, story_id=decision.story_id)
        index.add(fp)
        if n % 5_000 == 0:
            print(f"{n} articles: peak RSS {peak_rss_mb():,.0f} MB, index {len(index)}",
                  flush=True)
    cpu_used = time.process_time() - cpu
    figures = {"articles": args.articles,
               "horizon_days": args.horizon_days if horizon is not None else None,
               "setup_rss_mb": round(setup_rss, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
               "index_held": len(index), "joined": joined,
               "grouping_digest": None if args.no_decide else decisions.hexdigest()[:16],
               "cpu_ms_per_article": round(1000 * cpu_used / args.articles, 2)}
    print(f"{args.articles} articles, horizon {figures['horizon_days']} days: peak RSS "
          f"{figures['peak_rss_mb']:,.0f} MB (after set-up {setup_rss:,.0f} MB), index holds "
          f"{len(index)}, {joined} joined an earlier story (grouping "
          f"{figures['grouping_digest']}), "
          f"{figures['cpu_ms_per_article']} ms CPU per article")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
