"""Story grouping on the gold pairs: pair precision and recall across languages and within one.

    .venv/bin/python bench/bench_grouping.py [--method minhash] [--json]
    .venv/bin/python bench/bench_grouping.py --check      # validate the gold set only

Reads tests/gold/stories/articles.jsonl and pairs.jsonl (real published leads; see the README
beside them), first checks the set's invariants (a broken gold file fails loudly), then asks
a grouping method, for every labelled pair, whether the two articles are one story. Each
article is compared as ``title + "\\n" + text`` (the title is empty where none was recorded).

Pair precision = pairs predicted "same" that are the same event / all pairs predicted "same";
pair recall = same-event pairs predicted "same" / all same-event pairs. Both are reported for
cross-language and same-language pairs separately, with the false-positive count on the hard
negatives. With ``--json`` the last line printed is one JSON object:
``{"pairs", "cross_precision", "cross_recall", "same_precision", "same_recall"}``
(a precision is null when the method predicted no pair of that kind "same").

Methods: ``minhash`` is today's grouping (pipeline/stories.py: MinHash of word bigrams, one story
at estimated Jaccard >= NEAR_DUPLICATE_THRESHOLD). Another grouping is plugged in by name in
METHODS or as ``--method package.module:factory``, where ``factory()`` returns a Judge: a
callable taking the two articles and answering (same story?, score). ``story`` is the
grouping across languages (pipeline/story/). ``--split tune|test`` keeps the pairs
whose two events fall in one half of the events (by event-key hash: constants are fitted on
"tune" and checked on "test"); ``--speed`` adds articles/s beside minhash in one process;
``--fit`` refits the story weights on the tune pairs (``fit``) and prints them;
``--burst`` adds the pipeline's grouping of the split's articles arriving all at once
(``burst``), scored on every pair of articles against the event keys; ``--explain`` lists
every missed same-event pair and every false join of the story method with the weighted
signals behind its score, and counts the misses by what they lack (``explain``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GOLD = REPO / "tests" / "gold" / "stories"
KINDS = ("cross-language", "same-language")
_LANG = re.compile(r"^[a-z]{2,3}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: The leads are short by design (what the grouping sees); a longer text is an editing slip.
MAX_TEXT = 520


@dataclass(frozen=True)
class Article:
    id: str
    lang: str
    url: str
    outlet: str
    published: str | None
    title: str | None
    text: str
    event: str

    @property
    def body(self) -> str:
        """What a grouping method compares: the title, then the lead."""
        return f"{self.title or ''}\n{self.text}"


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    kind: str
    hard: bool
    note: str


#: A grouping method's answer for two articles: (one story?, its score for the record).
Judge = Callable[[Article, Article], tuple[bool, float]]


class GoldError(ValueError):
    """The gold files break one of the set's invariants (see tests/gold/stories/README.md)."""


def _jsonl(path: Path) -> list[dict[str, object]]:
    rows = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise GoldError(f"{path.name}:{number}: not JSON: {exc}") from exc
    return rows


def _article(row: dict[str, object], where: str) -> Article:
    fields = {"id", "lang", "url", "outlet", "published", "title", "text", "event"}
    if set(row) != fields:
        raise GoldError(f"{where}: fields {sorted(row)} are not {sorted(fields)}")
    for key in ("id", "lang", "url", "outlet", "text", "event"):
        if not isinstance(row[key], str) or not str(row[key]).strip():
            raise GoldError(f"{where}: {key} must be a non-empty string")
    for key in ("published", "title"):
        if row[key] is not None and not isinstance(row[key], str):
            raise GoldError(f"{where}: {key} must be a string or null")
    art = Article(**row)  # type: ignore[arg-type]
    if not _LANG.match(art.lang):
        raise GoldError(f"{where}: lang {art.lang!r} is not an ISO 639 code")
    if not art.url.startswith(("http://", "https://")):
        raise GoldError(f"{where}: url {art.url!r} is not http(s)")
    if art.published is not None and not _DATE.match(art.published):
        raise GoldError(f"{where}: published {art.published!r} is not YYYY-MM-DD")
    if len(art.text) > MAX_TEXT:
        raise GoldError(f"{where}: text has {len(art.text)} characters, more than {MAX_TEXT}")
    return art


def load_gold(root: Path = GOLD) -> tuple[dict[str, Article], list[Pair]]:
    """The gold articles by id and the labelled pairs, after checking every invariant.

    Raises GoldError when an article is malformed or duplicated, a pair names an unknown
    article, a pair is listed twice, its kind does not match the two languages, or its label
    disagrees with the event keys: ``same`` must equal ``event(a) == event(b)``, so the pair
    labels and the clusters by event key can never contradict each other.
    """
    articles: dict[str, Article] = {}
    urls: set[str] = set()
    for number, row in enumerate(_jsonl(root / "articles.jsonl"), 1):
        art = _article(row, f"articles.jsonl:{number}")
        if art.id in articles:
            raise GoldError(f"articles.jsonl:{number}: duplicate id {art.id}")
        if art.url in urls:
            raise GoldError(f"articles.jsonl:{number}: duplicate url {art.url}")
        articles[art.id] = art
        urls.add(art.url)
    pairs: list[Pair] = []
    seen: set[frozenset[str]] = set()
    for number, row in enumerate(_jsonl(root / "pairs.jsonl"), 1):
        where = f"pairs.jsonl:{number}"
        if set(row) != {"a", "b", "same", "kind", "hard", "note"}:
            raise GoldError(f"{where}: fields {sorted(row)}")
        if not isinstance(row["same"], bool) or not isinstance(row["hard"], bool):
            raise GoldError(f"{where}: same and hard must be booleans")
        pair = Pair(**row)  # type: ignore[arg-type]
        if pair.a not in articles or pair.b not in articles or pair.a == pair.b:
            raise GoldError(f"{where}: {pair.a} / {pair.b} are not two known articles")
        key = frozenset((pair.a, pair.b))
        if key in seen:
            raise GoldError(f"{where}: pair {pair.a} / {pair.b} listed twice")
        seen.add(key)
        first, second = articles[pair.a], articles[pair.b]
        kind = KINDS[0] if first.lang != second.lang else KINDS[1]
        if pair.kind != kind:
            raise GoldError(f"{where}: kind {pair.kind!r}, but the languages say {kind!r}")
        if pair.same != (first.event == second.event):
            raise GoldError(
                f"{where}: same={pair.same} contradicts the events "
                f"{first.event!r} / {second.event!r}"
            )
        pairs.append(pair)
    return articles, pairs


def minhash_judge() -> Judge:
    """Today's grouping: pipeline/stories.py's MinHash signature and threshold."""
    from newsmon.pipeline.stories import NEAR_DUPLICATE_THRESHOLD, signature, similarity

    cache: dict[str, tuple[int, ...]] = {}

    def sig(art: Article) -> tuple[int, ...]:
        if art.id not in cache:
            cache[art.id] = signature(art.body)
        return cache[art.id]

    def judge(a: Article, b: Article) -> tuple[bool, float]:
        score = similarity(sig(a), sig(b))
        return score >= NEAR_DUPLICATE_THRESHOLD, score

    return judge


def story_judge() -> Judge:
    """Story features across languages (pipeline/story/): entities, names, figures,
    dates, content stems, title and publication day, one score against a threshold."""
    from newsmon.pipeline.detection import Classifier
    from newsmon.pipeline.story import StoryMatcher, same_story

    matcher = StoryMatcher(Classifier.from_path(REPO / "config" / "topics.yaml"))
    cache: dict[str, object] = {}

    def features(art: Article) -> Any:
        if art.id not in cache:
            cache[art.id] = matcher.features(art.text, art.title or "", art.lang, art.published)
        return cache[art.id]

    def judge(a: Article, b: Article) -> tuple[bool, float]:
        return same_story(features(a), features(b))

    return judge


METHODS: dict[str, Callable[[], Judge]] = {"minhash": minhash_judge, "story": story_judge}


def fit(articles: dict[str, Article], pairs: list[Pair], negative_weight: float = 2.0,
        l2: float = 0.01, steps: int = 20000) -> tuple[list[float], float]:
    """The weights and bias of pipeline/story/match.py, refitted on the "tune" pairs: a
    logistic regression over ``signals`` with different-event pairs counted
    ``negative_weight`` times, an L2 penalty, and each weight held to its expected sign
    (``POSITIVE_SIGNALS`` at or above 0, the others at or below; projected gradient
    descent), rounded to 0.05. Deterministic (no random start)."""
    import numpy as np

    from newsmon.pipeline.detection import Classifier
    from newsmon.pipeline.story import StoryMatcher
    from newsmon.pipeline.story.match import POSITIVE_SIGNALS, SIGNALS, signals

    matcher = StoryMatcher(Classifier.from_path(REPO / "config" / "topics.yaml"))
    feats = {a.id: matcher.features(a.text, a.title or "", a.lang, a.published)
             for a in articles.values()}
    tune = select(articles, pairs, "tune")
    x = np.array([signals(feats[p.a], feats[p.b]) for p in tune])
    y = np.array([p.same for p in tune], dtype=float)
    sample = np.where(y > 0, 1.0, negative_weight)
    positive = np.array([name in POSITIVE_SIGNALS for name in SIGNALS])
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        err = sample * (1 / (1 + np.exp(-(x @ w + b))) - y)
        w -= 0.5 * (x.T @ err / len(y) + 10 * l2 * w / len(y))
        b -= 0.5 * float(err.mean())
        w = np.where(positive, np.maximum(w, 0), np.minimum(w, 0))
    return [round(v / 0.05) * 0.05 + 0.0 for v in w.tolist()], round(b / 0.05) * 0.05


def burst(articles: dict[str, Article], split: str) -> dict[str, float | int]:
    """The pipeline's grouping of the gold articles of one half (or all) when they all arrive
    within a day and a half: in file order, seven minutes apart, each dated the moment it
    is seen (as the pipeline dates an article whose source gave no date), grouped as
    ``GroupStoriesFn`` groups a batch (earliest first, candidates from the story index, one
    decision each, stories chained through their first article).

    Publication days then never separate two events, so this measures what the articles
    themselves tell apart, with the chaining a stream adds. Pair precision and recall count
    every pair of articles: one story and one event key (tp), one story and two events (fp),
    two stories and one event (fn).
    """
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from newsmon.pipeline import stories as dedup
    from newsmon.pipeline.detection import Classifier
    from newsmon.pipeline.normalize import text_hash
    from newsmon.pipeline.story import StoryMatcher

    matcher = StoryMatcher(Classifier.from_path(REPO / "config" / "topics.yaml"))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    index = dedup.StoryIndex()
    story: dict[str, str] = {}
    arts = [a for a in articles.values() if split == "all" or half(a.event) == split]
    for i, art in enumerate(arts):
        seen = start + timedelta(minutes=7 * i)
        fp = dedup.Fingerprint(art.id, art.id, text_hash(art.body), dedup.signature(art.body),
                               seen.isoformat(),
                               matcher.features(art.text, art.title or "", art.lang, seen))
        decision = dedup.decide_story(fp, index.candidates(fp))
        index.add(replace(fp, story_id=decision.story_id))
        story[art.id] = decision.story_id
    tp = fp_ = fn = 0
    for i, a in enumerate(arts):
        for b in arts[i + 1:]:
            same_event, same_story = a.event == b.event, story[a.id] == story[b.id]
            tp += same_event and same_story
            fp_ += same_story and not same_event
            fn += same_event and not same_story
    return {"articles": len(arts), "stories": len(set(story.values())), "tp": tp, "fp": fp_,
            "fn": fn, "precision": round(tp / (tp + fp_), 4) if tp + fp_ else 0.0,
            "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0}


def explain(articles: dict[str, Article], pairs: list[Pair]) -> list[str]:
    """Why the story method gets each wrong pair wrong: one line per missed same-event pair
    and per false join (score and the signals that moved it, each times its weight), then
    the misses counted by kind and by what they lack: a publication day (both known, or
    one unknown), a shared fact (a figure, date, weekday, name or title stem, beyond the
    entities and concept groups), a shared blocking key."""
    from newsmon.pipeline.detection import Classifier
    from newsmon.pipeline.story import SIGNALS, WEIGHTS, StoryMatcher, same_story, signals
    from newsmon.pipeline.story.match import blocked_together

    matcher = StoryMatcher(Classifier.from_path(REPO / "config" / "topics.yaml"))
    feats = {a.id: matcher.features(a.text, a.title or "", a.lang, a.published)
             for a in articles.values()}
    facts = ("numbers", "dates", "names_shared", "title", "weekdays")
    lines: list[str] = []
    why: Counter[str] = Counter()
    for pair in pairs:
        a, b = feats[pair.a], feats[pair.b]
        joined, value = same_story(a, b)
        if joined == pair.same:
            continue
        sig = dict(zip(SIGNALS, signals(a, b), strict=True))
        moved = ", ".join(f"{name} {w * x:+.2f}" for (name, x), w
                          in zip(sig.items(), WEIGHTS, strict=True) if x)
        label = "missed" if pair.same else "false join"
        lines.append(f"{label:<11}{pair.kind:<16}{value:+.2f}  {pair.a} / {pair.b}: {moved}")
        if pair.same:
            day = "both days known" if a.day is not None and b.day is not None else "a day unknown"
            shared = ("a shared fact" if any(sig[name] for name in facts)
                      else "entities and groups only")
            keyed = "" if blocked_together(a, b) else ", no shared blocking key"
            why[f"{pair.kind}: {day}, {shared}{keyed}"] += 1
    lines += [f"{count:>4}  {reason}" for reason, count in sorted(why.items())]
    return lines


def half(event: str) -> str:
    """The half of the gold events an event key falls in: "tune" or "test", by a stable hash,
    so that a method's constants can be fitted on one half and checked on the other."""
    return "tune" if int(hashlib.sha256(event.encode()).hexdigest(), 16) % 2 == 0 else "test"


def select(articles: dict[str, Article], pairs: list[Pair], split: str) -> list[Pair]:
    """The pairs of one half (both events in it), or all pairs for "all"."""
    if split == "all":
        return pairs
    return [p for p in pairs
            if half(articles[p.a].event) == split and half(articles[p.b].event) == split]


def throughput(method: str, articles: dict[str, Article], rounds: int = 3) -> float:
    """Articles per second for a fresh judge to see every gold article and compare each with
    the next 12 in file order (features once per article, as a story index would); building
    the judge (loading the rule set) is not timed."""
    arts = list(articles.values())
    elapsed = 0.0
    for _ in range(rounds):
        judge = resolve(method)
        begin = time.perf_counter()
        for i, art in enumerate(arts):
            for other in arts[i + 1 : i + 13]:
                judge(art, other)
        elapsed += time.perf_counter() - begin
    return rounds * len(arts) / elapsed


def resolve(method: str) -> Judge:
    """A Judge by registered name, or from ``package.module:factory``."""
    if method in METHODS:
        return METHODS[method]()
    module, sep, name = method.partition(":")
    if not sep:
        raise SystemExit(f"unknown method {method!r}: use one of {sorted(METHODS)} or mod:factory")
    factory = getattr(importlib.import_module(module), name)
    judge: Judge = factory()
    return judge


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    hard_fp: int = 0
    hard_neg: int = 0

    def add(self, gold: bool, predicted: bool, hard: bool) -> None:
        if gold and predicted:
            self.tp += 1
        elif gold:
            self.fn += 1
        elif predicted:
            self.fp += 1
        else:
            self.tn += 1
        if hard and not gold:
            self.hard_neg += 1
            self.hard_fp += predicted

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def evaluate(
    judge: Judge, articles: dict[str, Article], pairs: Iterable[Pair]
) -> tuple[dict[str, Tally], list[tuple[Pair, bool, float]]]:
    tallies = {kind: Tally() for kind in KINDS}
    results = []
    for pair in pairs:
        predicted, score = judge(articles[pair.a], articles[pair.b])
        tallies[pair.kind].add(pair.same, predicted, pair.hard)
        results.append((pair, predicted, score))
    return tallies, results


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="minhash", help="registered name or mod:factory")
    parser.add_argument("--gold", type=Path, default=GOLD, help="folder with the two files")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--check", action="store_true", help="only validate the gold set")
    parser.add_argument("--split", choices=("all", "tune", "test"), default="all",
                        help="pairs of one half of the events (by event-key hash), or all")
    parser.add_argument("--fit", action="store_true",
                        help="refit the story weights on the tune pairs and print them")
    parser.add_argument("--burst", action="store_true",
                        help="also group the split's articles as one burst (see burst())")
    parser.add_argument("--explain", action="store_true",
                        help="list the story method's wrong pairs and why (see explain())")
    parser.add_argument("--speed", action="store_true",
                        help="also measure articles/s of this method and of minhash")
    args = parser.parse_args(argv)

    try:
        articles, pairs = load_gold(args.gold)
    except GoldError as exc:
        print(f"gold set invalid: {exc}", file=sys.stderr)
        return 1
    langs = Counter(a.lang for a in articles.values())
    events = len({a.event for a in articles.values()})
    print(
        f"gold: {len(articles)} articles, {events} events, {len(langs)} languages; "
        f"{len(pairs)} pairs ({sum(p.same for p in pairs)} same, "
        f"{sum(not p.same for p in pairs)} different, "
        f"{sum(p.hard and not p.same for p in pairs)} hard negatives)"
    )
    if args.check:
        print("gold set valid")
        return 0
    if args.fit:
        from newsmon.pipeline.story import SIGNALS

        weights, bias = fit(articles, pairs)
        for name, weight in zip(SIGNALS, weights, strict=True):
            print(f"{name:<20}{weight:+.2f}")
        print(f"{'bias':<20}{bias:+.2f}")
        return 0

    pairs = select(articles, pairs, args.split)
    if args.explain:
        print("\n".join(explain(articles, pairs)))
    tallies, results = evaluate(resolve(args.method), articles, pairs)
    print(f"method: {args.method}, split: {args.split} ({len(pairs)} pairs)")
    print(f"{'kind':<16}{'pairs':>6}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>8}"
          f"{'hard-neg fp':>13}")
    for kind, t in tallies.items():
        total = t.tp + t.fp + t.fn + t.tn
        print(f"{kind:<16}{total:>6}{t.tp:>5}{t.fp:>5}{t.fn:>5}{_fmt(t.precision):>11}"
              f"{_fmt(t.recall):>8}{f'{t.hard_fp}/{t.hard_neg}':>13}")
    for kind in KINDS:
        for same in (True, False):
            scores = [s for p, _, s in results if p.kind == kind and p.same == same]
            if scores:
                label = "same event" if same else "different"
                print(f"mean score, {kind}, {label}: {sum(scores) / len(scores):.3f}")
    stream: dict[str, float | int] = {}
    if args.burst:
        stream = burst(articles, args.split)
        print(f"burst ({stream['articles']} articles, {stream['stories']} stories): pair "
              f"precision {stream['precision']:.3f}, recall {stream['recall']:.3f} "
              f"(tp {stream['tp']}, fp {stream['fp']}, fn {stream['fn']})")
    speed: dict[str, float] = {}
    if args.speed:
        for method in dict.fromkeys((args.method, "minhash")):
            speed[method] = throughput(method, articles)
            print(f"throughput, {method}: {speed[method]:.0f} articles/s "
                  "(features + 12 comparisons each, judge set-up excluded)")
    if args.json:
        cross, within = tallies["cross-language"], tallies["same-language"]
        print(json.dumps({
            "pairs": len(pairs),
            "cross_precision": _round(cross.precision),
            "cross_recall": _round(cross.recall),
            "same_precision": _round(within.precision),
            "same_recall": _round(within.recall),
            "split": args.split,
            **{f"articles_per_s_{m}": round(v, 1) for m, v in speed.items()},
            **{f"burst_{k}": v for k, v in stream.items() if k in ("precision", "recall")},
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
