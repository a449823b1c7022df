"""Classification throughput on real-length articles, beside one plain pass over the same texts.

    .venv/bin/python bench/bench_classify.py [--articles 2000] [--seed 7] [--json]

Builds ~2,000 synthetic articles of 3,000-8,000 characters by mixing the gold-set articles
(tests/gold/gold.jsonl, 8 languages, positives and hard negatives) with neutral news filler,
then times, on one core:

- ``classify``: ``Classifier.classify`` with the shipped config/topics.yaml (normalization,
  the Aho-Corasick pass, rule evaluation, evidence and entities);
- ``plain pass``: ``text.lower()`` plus one compiled-regex scan for a handful of words, the
  least any keyword filter has to do: the limit this stage is measured against.

Prints articles per second (of process CPU time, best of alternating rounds) for both and the
ratio; ``--json`` adds one JSON object as the last line; ``--split`` adds where classify's time
goes (microseconds of process CPU per article, best of the rounds, for the parts that can be
timed on their own; the rest is building the result: evidence snippets and models).
``--reference`` times the Python reference path instead of the compiled core (native/).
Pure CPU, no services.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from newsmon.pipeline.detection import Classifier, load_rules
from newsmon.pipeline.detection._compiled import _Doc
from newsmon.pipeline.detection.text import (
    normalize,
    sentence_starts,
    spaced_words,
)

REPO = Path(__file__).resolve().parents[1]

# Neutral sentences that share nothing with the topics, so the matcher does realistic work on
# text that is mostly not evidence.
FILLER = [
    "The central bank left interest rates unchanged on Thursday, citing stubborn inflation.",
    "Heavy rain is expected across the north of the country over the weekend.",
    "The city council approved a new budget for public transport and cycling lanes.",
    "Shares in the carmaker rose after it reported better than expected quarterly sales.",
    "Die Bundesregierung will die Förderung für Wärmepumpen im kommenden Jahr anpassen.",
    "Im Süden Deutschlands wird am Wochenende mit starken Gewittern gerechnet.",
    "Le gouvernement a présenté jeudi son projet de loi sur la réforme des retraites.",
    "La saison touristique s'annonce record sur la côte atlantique, selon les professionnels.",
    "Il governo ha approvato il decreto sulle infrastrutture e sui porti del Mezzogiorno.",
    "El Ayuntamiento de Madrid amplía el horario de las bibliotecas municipales en verano.",
    "Rząd przyjął projekt ustawy o finansowaniu szpitali powiatowych na przyszły rok.",
    "В Москве из-за снегопада ограничено движение на нескольких магистралях.",
    "Центробанк сохранил ключевую ставку, сославшись на высокую инфляцию.",
    "У Львові відкрили новий медичний центр для реабілітації пацієнтів.",
    "Уряд схвалив програму підтримки малого бізнесу на наступний рік.",
]


def make_articles(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    gold = [
        json.loads(line)["text"]
        for line in (REPO / "tests" / "gold" / "gold.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    articles = []
    for _ in range(count):
        target = rng.randint(3_000, 8_000)
        parts: list[str] = []
        size = 0
        while size < target:
            # About one paragraph in four is on-topic or a hard negative, the rest filler.
            piece = rng.choice(gold) if rng.random() < 0.25 else rng.choice(FILLER)
            parts.append(piece)
            size += len(piece) + 1
        articles.append("\n".join(parts)[:target])
    return articles


_PLAIN = re.compile(r"\b(?:troops|truppen|войск|atacms|taurus|storm shadow|ukrain\w*)\b")


def plain_pass(text: str) -> int:
    return len(_PLAIN.findall(text.lower()))


def timed(func: Callable[[str], object], articles: list[str], repeats: int) -> float:
    """Best articles per second of this process's CPU time over ``repeats`` runs: on a shared
    machine, wall time counts the other processes' turns too (best-of filters what is left)."""
    rates = []
    for _ in range(repeats):
        start = time.process_time()
        for text in articles:
            func(text)
        rates.append(len(articles) / (time.process_time() - start))
    return max(rates)


def split(classifier: Classifier, articles: list[str], repeats: int) -> dict[str, float]:
    """Microseconds of process CPU per article for each part of ``classify`` that runs on its
    own (best of ``repeats``); ``results`` (evidence snippets and the result models) is
    ``classify`` less the others. The compiled core is timed with each document's sentence
    starts already found (they are a part of their own)."""
    engine = classifier._engine
    if engine is None:
        raise SystemExit("--split times the compiled path; it cannot be combined with --reference")
    norms = [normalize(text) for text in articles]
    spaced = [spaced_words(n.text) for n in norms]
    split_sentences = classifier._split
    assert split_sentences is not None
    located = [_Doc(n).locate(split_sentences) for n in norms]

    def core() -> None:
        for norm, sp, where in zip(norms, spaced, located, strict=True):
            if sp is None:
                classifier._find(_Doc(norm), None)  # scripts without spaces: Python matcher
            else:
                engine.classify(norm.text, sp, None, lambda *_: True, lambda w=where: w, False)

    parts: dict[str, Callable[[], object]] = {
        "classify": lambda: [classifier.classify(text) for text in articles],
        "normalize": lambda: [normalize(text) for text in articles],
        "word-delimited copy": lambda: [spaced_words(n.text) for n in norms],
        # Compiled, falling back to Python's for text the compiled splitter leaves to it.
        "sentence starts": lambda: [split_sentences(n.original) or sentence_starts(n.original)
                                    for n in norms],
        # Matching, word and sentence coordinates and rule evaluation (native/src/lib.rs).
        "compiled core": core,
    }
    result = {}
    for name, run in parts.items():
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            run()
            best = min(best, time.process_time() - start)
        result[name] = best / len(articles) * 1e6
    result["results"] = result["classify"] - sum(
        result[name]
        for name in ("normalize", "word-delimited copy", "sentence starts", "compiled core")
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true",
                        help="print the figures as one JSON object on the last line")
    parser.add_argument("--reference", action="store_true",
                        help="time the Python reference path (Classifier(reference=True)), "
                             "not the compiled core")
    parser.add_argument("--split", action="store_true",
                        help="also time the parts of classify on their own (µs per article)")
    args = parser.parse_args()

    start = time.perf_counter()
    classifier = Classifier(load_rules(REPO / "config" / "topics.yaml"),
                            reference=args.reference)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    pickle.loads(pickle.dumps(classifier))
    unpickle_s = time.perf_counter() - start

    articles = make_articles(args.articles, args.seed)
    lengths = [len(a) for a in articles]
    topical = sum(1 for a in articles if classifier.classify(a).topics)

    # Alternating rounds, best of each: on a shared machine a load that comes and goes then
    # hits both sides alike, and the ratio is what is compared.
    classify_rate = plain_rate = 0.0
    for _ in range(args.repeats):
        classify_rate = max(classify_rate, timed(classifier.classify, articles, 1))
        plain_rate = max(plain_rate, timed(plain_pass, articles, 1))
    mb = sum(lengths) / 1e6

    print(
        f"articles: {len(articles)}, chars: mean {statistics.mean(lengths):.0f}, "
        f"min {min(lengths)}, max {max(lengths)}; with a topic: {topical}"
    )
    print(f"rule set: built in {build_s:.2f} s, pickle round trip {unpickle_s:.2f} s")
    print(f"{'':<12} {'articles/s':>12} {'MB/s':>8}")
    print(f"{'classify':<12} {classify_rate:>12.0f} {classify_rate * mb / len(articles):>8.2f}")
    print(f"{'plain pass':<12} {plain_rate:>12.0f} {plain_rate * mb / len(articles):>8.2f}")
    print(f"classify costs {plain_rate / classify_rate:.1f}x one plain pass (one core)")
    figures: dict[str, object] = {
        "articles": len(articles), "classify_per_s": round(classify_rate, 1),
        "plain_per_s": round(plain_rate, 1), "ratio": round(plain_rate / classify_rate, 2),
    }
    if args.split:
        parts = split(classifier, articles, args.repeats)
        print(f"per article, µs of process CPU: plain pass {1e6 / plain_rate:.0f}")
        for name, micros in parts.items():
            print(f"  {name:<22} {micros:>7.0f}")
        figures["split_us"] = {name: round(micros) for name, micros in parts.items()}
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
