"""What review flags cost and find in a language without rules, measured by taking rules away.

    .venv/bin/python bench/bench_review.py [FILE.jsonl ...]

For each language with rules and labelled records (by default ../shared/eval/dev.jsonl,
dev2.jsonl and tests/gold/**.jsonl), builds the shipped rule set without that language (its
terms and its place in ``languages``) and classifies that language's records as if it had
none. Prints, per language and in total: the topic's own rules still firing (other languages'
terms apply to every text), the review flags raised, and how many of each were right. Then the
same for records in languages that never had rules (tests/gold/review.jsonl). Pure CPU.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

from newsmon.pipeline.detection import Classifier, RuleSet, load_rules
from newsmon.pipeline.detection.evaluation import EvalRecord, read_records

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NEWSMON_SHARED_DIR") or REPO.parent / "shared")
TOPICS = ("troop_deployment", "long_range_strike")


def without(rules: RuleSet, lang: str) -> RuleSet:
    """The rule set as if ``lang`` had no rules: its terms and declaration removed."""
    data = rules.model_dump(by_alias=True)
    data["languages"] = [code for code in data["languages"] if code != lang]
    for group in data["groups"].values():
        group["terms"].pop(lang, None)
    for entity in data["entities"]:
        entity["terms"].pop(lang, None)
    data["entities"] = [e for e in data["entities"] if e["terms"]]
    return RuleSet.model_validate(data)


def tally(classifier: Classifier, records: list[EvalRecord]) -> dict[str, list[int]]:
    """Per topic: [labelled, own-rule hits right, wrong, review flags right, wrong]."""
    counts: dict[str, list[int]] = {t: [0, 0, 0, 0, 0] for t in TOPICS}
    for record in records:
        result = classifier.classify(record.text, record.lang, title=record.title)
        for topic in TOPICS:
            gold = topic in record.labels
            counts[topic][0] += gold
            for match in result.topics:
                if match.topic == topic:
                    slot = 3 if match.review else 1
                    counts[topic][slot + (not gold)] += 1
    return counts


def line(label: str, counts: dict[str, list[int]]) -> str:
    cells = []
    for topic in TOPICS:
        n, own_ok, own_bad, rev_ok, rev_bad = counts[topic]
        cells.append(f"{n:>3} {own_ok:>3}/{own_ok + own_bad:<3} {rev_ok:>3}/{rev_ok + rev_bad:<3}")
    return f"{label:<10} " + "   ".join(cells)


def main(paths: list[Path]) -> None:
    rules = load_rules(REPO / "config" / "topics.yaml")
    by_lang: dict[str, list[EvalRecord]] = defaultdict(list)
    for path in paths:
        for record in read_records(path):
            by_lang[record.lang].append(record)
    header = f"{'':<10} " + "   ".join(f"{t[:13]:>13}: n own rev  " for t in TOPICS)
    print("own = topic rules firing (right/all), rev = review flags (right/all)")
    print(header)
    total: dict[str, list[int]] = {t: [0, 0, 0, 0, 0] for t in TOPICS}
    for lang in sorted(set(by_lang) & set(rules.languages)):
        counts = tally(Classifier(without(rules, lang)), by_lang[lang])
        for topic in TOPICS:
            total[topic] = [a + b for a, b in zip(total[topic], counts[topic], strict=True)]
        print(line(f"-{lang}", counts))
    print(line("all", total))
    uncovered = [r for lang, recs in by_lang.items() if lang not in rules.languages for r in recs]
    if uncovered:
        print(line("no rules", tally(Classifier(rules), uncovered)))


if __name__ == "__main__":
    given = [Path(p) for p in sys.argv[1:]]
    defaults = [SHARED / "eval" / "dev.jsonl", SHARED / "eval" / "dev2.jsonl",
                *sorted((REPO / "tests" / "gold").rglob("*.jsonl"))]
    main(given or [p for p in defaults if p.exists()])
