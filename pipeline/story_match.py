"""Story features and the same-story decision, across scripts and languages.

Two reports of one event rarely share word bigrams when they are told in two languages, or
rewritten in one: what they share are the facts. ``StoryMatcher.features`` reduces an article
to those facts, each normalised so that scripts and languages agree:

- **entities**: the canonical names the rule set's ``entities`` already know in every
  language and script (weapons, countries, leaders, organisations), found by the same
  ``Classifier`` that detects topics, so there is one multilingual list, not two;
- **names**: other proper names (places, people, units), transliterated to ASCII
  (``anyascii``) and reduced to a consonant skeleton so that Брянск, Bryansk and Brjansk agree;
- **numbers**: figures written with digits, separators removed (1,000 = 1.000 = 1 000);
- **stems**: content words, transliterated and cut to a prefix (a cheap stemmer that also
  joins related languages), with the title's stems kept apart;
- **dates** and **weekdays** named in the text ("19 November", "во вторник"), from CLDR's
  month and day names in every language (``babel``);
- **topics**: what the rule set detects, with its attribute (a denial is not its claim);
- **day**: the publication day where known, for time proximity.

``signals`` measures what two articles share and where they conflict (publication days far
apart, dates or weekdays that disagree, another topic or reading); ``score`` weighs them
(``WEIGHTS``, fitted on one half of the gold events) and ``same_story`` compares the score
to a threshold.
``blocking_keys`` names the buckets in which a candidate must share at least one key, so the
story index looks up candidates instead of comparing all pairs. Pure logic, no Beam.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from anyascii import anyascii
from babel import Locale, UnknownLocaleError
from babel.dates import get_day_names, get_month_names

from newsmon.models import Classification
from newsmon.pipeline.detection import Classifier

__all__ = [
    "BIAS",
    "LEAD_CHARS",
    "SAME_STORY_THRESHOLD",
    "SIGNALS",
    "WEIGHTS",
    "StoryFeatures",
    "StoryMatcher",
    "blocked_together",
    "blocking_keys",
    "may_reach",
    "same_story",
    "score",
    "signals",
]

#: Entity kinds by how much a shared one says about the event. A weapon system or a named
#: leader narrows a war story down far more than the country it happens in.
_KIND_WEIGHT = {"weapon": 1.0, "leader": 0.8, "organisation": 0.3, "country": 0.3}
#: Countries named in nearly every report of this war: sharing them says nothing.
_UBIQUITOUS = frozenset({"country:Ukraine", "country:Russia"})
_KEY_KINDS = ("weapon:", "leader:")

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
# Digits with thousands separators (comma, dot, thin or plain space) and a decimal part.
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:[ \u00a0\u202f.,]\d{3})+(?![\d])|\d+(?:[.,]\d+)?")
#: Punctuation after which a capital opens a sentence (or a quotation) rather than a name.
_SENTENCE_END = frozenset('.!?…:»"“„«')
_TOKEN = re.compile(r"\w+", re.UNICODE)
_VOWELS = str.maketrans("", "", "aeiouyjh'")
_FOLDS = (("kh", "k"), ("ch", "k"), ("ck", "k"), ("c", "k"), ("q", "k"), ("ph", "f"),
          ("w", "f"), ("v", "f"), ("z", "s"), ("x", "ks"))
_STEM = 5
#: How much of a text is read: a report states its facts in the lead, the rest of a long
#: article adds background (other dates, other figures) that blurs the match and costs time.
#: The gold leads are at most 520 characters.
LEAD_CHARS = 1200
_MIN_WORD = 4
#: Words whose facts are remembered (about 30 MB at most).
_WORD_FACTS_MAX = 200_000
#: month, weekday, stem, name skeleton of one word (``StoryMatcher._facts_of``).
_WordFacts = tuple[int | None, int | None, str | None, str | None]


def _skeleton(word: str) -> str:
    """A transliterated name's first consonants: Kakhovka, Kachowka, Каховка -> ``kfk``;
    Kherson, Cherson, Херсон, chersońskim -> ``krsn``.

    Vowels, j/y/h and apostrophes differ most between transliterations and inflections, so
    they are dropped; kh/ch/c/q fold into k, w/v/ph into f, z into s. Four consonants are
    enough to tell places apart and short enough to ignore case endings.
    """
    latin = anyascii(word).lower()
    for old, new in _FOLDS:
        latin = latin.replace(old, new)
    skeleton = latin.translate(_VOWELS)
    # Collapse doubled letters (Belgorod / Bełgorod / Белгород differ in nothing else).
    skeleton = re.sub(r"(.)\1+", r"\1", skeleton)
    return skeleton[:4]


class _Calendar:
    """Month and weekday names of many languages (from CLDR, via babel), read off a token.

    Slavic languages inflect them ("в среду", "у вівторок"): a name of five letters or more
    also matches a word of its length that differs only in its last letter.
    """

    def __init__(self, languages: Iterable[str]) -> None:
        self.months: dict[str, int] = {}
        self.days: dict[str, int] = {}
        self._month_stems: dict[str, int] = {}
        self._day_stems: dict[str, int] = {}
        for lang in sorted({"en", *languages}):
            try:
                Locale.parse(lang)
            except (UnknownLocaleError, ValueError):
                continue
            for context in ("format", "stand-alone"):
                for width in ("wide", "abbreviated"):
                    for number, name in get_month_names(width, context, lang).items():
                        self._add(name, number, self.months, self._month_stems)
                for number, name in get_day_names("wide", context, lang).items():
                    self._add(name, number, self.days, self._day_stems)

    @staticmethod
    def _add(name: str, value: int, exact: dict[str, int], stems: dict[str, int]) -> None:
        word = name.lower().rstrip(".")
        if len(word) < 3:
            return
        exact.setdefault(word, value)
        if len(word) >= 5:
            stems.setdefault(word[:-1] + str(len(word)), value)

    def month(self, word: str) -> int | None:
        return self.months.get(word) or self._month_stems.get(word[:-1] + str(len(word)))

    def day(self, word: str) -> int | None:
        found = self.days.get(word)
        if found is None:
            found = self._day_stems.get(word[:-1] + str(len(word)))
        return found


def _number(raw: str) -> str | None:
    digits = re.sub(r"[ \u00a0\u202f]", "", raw)
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", digits):
        digits = re.sub(r"[.,]", "", digits)
    digits = digits.replace(",", ".")
    # Single digits are everywhere (and often spelled out in another language's copy).
    if len(digits.replace(".", "")) < 2:
        return None
    return digits.rstrip("0").rstrip(".") if "." in digits else digits


@dataclass(frozen=True)
class StoryFeatures:
    """What one article says, in a form two languages can compare. Frozen and JSON-able."""

    entities: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    stems: frozenset[str] = frozenset()
    title_stems: frozenset[str] = frozenset()
    #: Dates named in the text, as "month-day" (November 19 -> "11-19").
    dates: frozenset[str] = frozenset()
    #: Weekdays named in the text, 0 = Monday ("said on Tuesday").
    weekdays: frozenset[str] = frozenset()
    #: The topics the rules detect, each with its attribute ("troops:denied",
    #: "strikes:used"): a denial and the claim it denies are two events.
    topics: frozenset[str] = frozenset()
    lang: str = "und"
    #: Days since 0001-01-01 of the publication date; None when the source gave none.
    day: int | None = None

    def to_doc(self) -> dict[str, Any]:
        """The stored form (the search server keeps it unindexed, beside the MinHash)."""
        return {
            "entities": sorted(self.entities),
            "names": sorted(self.names),
            "numbers": sorted(self.numbers),
            "stems": sorted(self.stems),
            "title_stems": sorted(self.title_stems),
            "dates": sorted(self.dates),
            "weekdays": sorted(self.weekdays),
            "topics": sorted(self.topics),
            "lang": self.lang,
            "day": self.day,
        }

    @classmethod
    def from_doc(cls, doc: object) -> StoryFeatures | None:
        """The features stored by ``to_doc``; None for a document written before they existed
        or with a malformed value (it is then compared on its MinHash only)."""
        if not isinstance(doc, dict):
            return None

        def strings(key: str) -> frozenset[str]:
            value = doc.get(key)
            if value is None:
                return frozenset()
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError(key)
            return frozenset(value)

        try:
            day = doc.get("day")
            if day is not None and (not isinstance(day, int) or isinstance(day, bool)):
                return None
            lang = doc.get("lang") or "und"
            return cls(
                entities=strings("entities"),
                names=strings("names"),
                numbers=strings("numbers"),
                stems=strings("stems"),
                title_stems=strings("title_stems"),
                dates=strings("dates"),
                weekdays=strings("weekdays"),
                topics=strings("topics"),
                lang=str(lang),
                day=day,
            )
        except TypeError:
            return None


def _day(published: date | datetime | str | None) -> int | None:
    if published is None or published == "":
        return None
    if isinstance(published, str):
        try:
            published = date.fromisoformat(published[:10])
        except ValueError:
            return None
    if isinstance(published, datetime):
        published = published.date()
    return published.toordinal()


class StoryMatcher:
    """Extracts ``StoryFeatures`` with the entity terms of a rule set (built once, picklable)."""

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.calendar = _Calendar(classifier.rules.languages)
        # An entity is counted once, as an entity: its terms are not names as well.
        # Nor are the words of its canonical name (the "Emmanuel" of "Emmanuel Macron").
        words: list[str] = []
        for entity in classifier.rules.entities:
            words.extend(entity.name.split())
            words.extend(term.strip("=*") for weights in entity.terms.values() for term in weights)
        self._known_names = frozenset(_skeleton(word) for word in words if word)
        # What each word says, by word: news repeats its vocabulary, and transliterating and
        # skeletonising every token again was a third of the cost of ``features``.
        self._word_facts: dict[str, _WordFacts] = {}

    def _facts_of(self, word: str) -> _WordFacts:
        """Month, weekday, stem and name skeleton (for a capitalised word) of one token."""
        lower = word.lower()
        latin = anyascii(word).lower()
        name = None
        if word[0].isupper() and len(word) >= _MIN_WORD:
            skeleton = _skeleton(word)
            if len(skeleton) >= 3 and skeleton not in self._known_names:
                name = skeleton
        facts = (self.calendar.month(lower), self.calendar.day(lower),
                 latin[:_STEM] if len(latin) >= _MIN_WORD else None, name)
        if len(self._word_facts) >= _WORD_FACTS_MAX:
            self._word_facts.clear()  # bounded: a long-running worker meets endless names
        self._word_facts[word] = facts
        return facts

    def features(
        self,
        text: str,
        title: str = "",
        lang: str | None = None,
        published: date | datetime | str | None = None,
        classification: Classification | None = None,
    ) -> StoryFeatures:
        """The facts of one article. ``published`` is its publication day (a date, a datetime
        or an ISO string); the pipeline passes when the article was first seen where the
        source gave none. Only the lead is read (``LEAD_CHARS``). Pure: the same text always
        gives the same features.

        ``classification`` is the classifier's result for this very ``text``, ``lang`` and
        ``title`` where the caller already has it (the pipeline classified the article one
        stage earlier): when the text fits in the lead it is what classifying the lead would
        return, so the second pass is saved; for a longer text it is ignored.
        """
        lead = text[:LEAD_CHARS]
        body = f"{title}\n{lead}" if title else lead
        if classification is None or len(lead) != len(text):
            classification = self.classifier.classify(lead, lang, title=title)
        entities = frozenset(f"{e.kind}:{e.name}" for e in classification.entities)
        topics = frozenset(f"{t.topic}:{t.attribute or ''}" for t in classification.topics)
        names: set[str] = set()
        stems: set[str] = set()
        dates: set[str] = set()
        weekdays: set[str] = set()
        facts = self._word_facts
        for line in body.splitlines():
            tokens = list(_TOKEN.finditer(line))
            for i, match in enumerate(tokens):
                word = match.group()
                if word[0].isdigit():
                    continue
                found = facts.get(word)
                if found is None:
                    found = self._facts_of(word)
                month, weekday, stem, name = found
                if month is not None:
                    # "19 November", "November 19", "19. listopada", "le 19 novembre".
                    for j in (i - 1, i + 1):
                        if 0 <= j < len(tokens) and tokens[j].group().isdigit():
                            day = int(tokens[j].group())
                            if 1 <= day <= 31:
                                dates.add(f"{month}-{day}")
                if weekday is not None:
                    weekdays.add(str(weekday))
                if stem is not None:
                    stems.add(stem)
                # A capital that opens a sentence says nothing; elsewhere it marks a name.
                if name is not None and i and _SENTENCE_END.isdisjoint(
                        line[tokens[i - 1].end() : match.start()]):
                    names.add(name)
        numbers = {n for raw in _NUMBER.findall(body) if (n := _number(raw)) is not None}
        title_stems = frozenset(
            anyascii(w).lower()[:_STEM] for w in _WORD.findall(title)
            if len(anyascii(w)) >= _MIN_WORD
        )
        return StoryFeatures(
            entities=entities,
            names=frozenset(names),
            numbers=frozenset(numbers),
            stems=frozenset(stems),
            title_stems=title_stems,
            dates=frozenset(dates),
            weekdays=frozenset(weekdays),
            topics=topics,
            lang=lang or "und",
            day=_day(published),
        )


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)  # the union's size, without building it


def _entity_weight(names: Iterable[str]) -> float:
    return sum(
        0.0 if n in _UBIQUITOUS else _KIND_WEIGHT.get(n.partition(":")[0], 0.3) for n in names
    )


#: Score at or above which two articles are one story. The weights below were fitted (a
#: logistic regression, then rounded, with the signs a reader expects) on the pairs of one
#: half of the gold events, chosen by event-key hash (bench/bench_grouping.py --split tune),
#: and checked on the other half. The threshold favours precision: a false merge hides an
#: event inside another one's alert, a missed merge only sends one alert too many. The fit
#: chose 0.5 (tune P 0.87/0.90, R 0.81/0.92); at 0.5 the hard negatives of the gold set merge
#: (all pairs: cross-language P 0.74), so the pipeline runs at 2.5 (all pairs: cross P 0.93,
#: same-language P 1.00; recall 0.23 and 0.44, against 0.00 and 0.11 for MinHash alone).
SAME_STORY_THRESHOLD = 2.5

#: One weight per signal of ``signals`` (same order), and the bias: a logistic regression
#: on the tune half, rounded.
WEIGHTS = (
    0.6,  # entity weight both name
    -0.35,  # weapons named by one only
    -0.85,  # leaders named by one only: another speaker, another statement
    -1.1,  # both name two or more places or people, none the same
    2.0,  # shared figures (3,350 missiles; 26 countries)
    1.0,  # Jaccard of content stems, any two languages (related ones share many)
    1.05,  # the same, within one language, where stems are comparable
    4.05,  # Jaccard of the title stems
    0.7,  # published the same or the next day
    -0.4,  # days apart beyond one (up to ten)
    3.1,  # dates that agree (named in both, or named in one and the other's publication)
    -1.1,  # both place themselves in time, and no date agrees
    0.05,  # a weekday that agrees ("on Tuesday")
    -3.8,  # both place themselves in the week, and no weekday agrees
    -0.55,  # both on a topic, never the same one (troops against strikes)
    -1.1,  # the same topic, read differently (a denial against the claim it denies)
)
BIAS = 0.8
SIGNALS = (
    "entities_shared", "weapons_alone", "leaders_alone", "names_disjoint", "numbers", "stems",
    "stems_same_language", "title", "day_near", "day_gap", "dates", "dates_conflict",
    "weekdays", "weekdays_conflict", "topics_conflict", "attribute_conflict",
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


def signals(a: StoryFeatures, b: StoryFeatures) -> tuple[float, ...]:
    """The evidence for and against one story, one number per name in ``SIGNALS``."""
    stems = _jaccard(a.stems, b.stems)
    gap = abs(a.day - b.day) if a.day is not None and b.day is not None else None
    when_a = a.dates | _around(a.day, 2)
    when_b = b.dates | _around(b.day, 2)
    dates = len(a.dates & when_b) + len(b.dates & when_a) - len(a.dates & b.dates)
    week_a = a.weekdays | _weekdays_around(a.day, 1)
    week_b = b.weekdays | _weekdays_around(b.day, 1)
    weekdays = bool(a.weekdays & week_b or b.weekdays & week_a)
    topics_a = frozenset(t.partition(":")[0] for t in a.topics)
    topics_b = frozenset(t.partition(":")[0] for t in b.topics)
    alone = a.entities ^ b.entities
    return (
        _entity_weight(a.entities & b.entities),
        float(sum(e.startswith("weapon:") for e in alone)),
        float(sum(e.startswith("leader:") for e in alone)),
        float(len(a.names) >= 2 and len(b.names) >= 2 and not a.names & b.names),
        float(len(a.numbers & b.numbers)),
        stems,
        stems if a.lang == b.lang else 0.0,
        _jaccard(a.title_stems, b.title_stems),
        float(gap is not None and gap <= 1),
        float(min(gap, 10)) if gap is not None and gap > 1 else 0.0,
        float(dates),
        float(bool(a.dates or b.dates) and dates == 0 and bool(when_a) and bool(when_b)),
        float(weekdays),
        float(bool(a.weekdays or b.weekdays) and not weekdays and bool(week_a and week_b)),
        float(_conflict(topics_a, topics_b)),
        float(bool(topics_a & topics_b) and not a.topics & b.topics),
    )


def score(a: StoryFeatures, b: StoryFeatures) -> float:
    """How strongly the two articles report one event: shared facts minus conflicts."""
    return BIAS + sum(w * x for w, x in zip(WEIGHTS, signals(a, b), strict=True))


#: The positive weights of ``WEIGHTS`` by meaning, for ``may_reach``.
_W_ENTITIES, _W_NUMBERS, _W_STEMS, _W_STEMS_SAME, _W_TITLE, _W_DAY, _W_DATES, _W_WEEKDAYS = (
    WEIGHTS[0], WEIGHTS[4], WEIGHTS[5], WEIGHTS[6], WEIGHTS[7], WEIGHTS[8], WEIGHTS[10],
    WEIGHTS[12])
assert all(w > 0 for w in (_W_ENTITIES, _W_NUMBERS, _W_STEMS, _W_STEMS_SAME, _W_TITLE, _W_DAY,
                           _W_DATES, _W_WEEKDAYS))
assert sum(w > 0 for w in WEIGHTS) == 8, "may_reach must bound every positive signal"


def may_reach(a: StoryFeatures, b: StoryFeatures, threshold: float) -> bool:
    """False only when ``score(a, b)`` is certainly below ``threshold``: an upper bound from
    the positive signals alone (every negative weight multiplies a signal that is never
    negative), each at its largest possible value where computing it exactly costs more.
    A batch scores each article against hundreds of candidates, nearly all unrelated; this
    bound rules most of them out at a fifth of the cost, and never changes a decision."""
    stems = _jaccard(a.stems, b.stems)
    bound = (
        BIAS
        + _W_ENTITIES * _entity_weight(a.entities & b.entities)
        + _W_NUMBERS * len(a.numbers & b.numbers)
        + (_W_STEMS + (_W_STEMS_SAME if a.lang == b.lang else 0.0)) * stems
        + _W_TITLE * _jaccard(a.title_stems, b.title_stems)
        + _W_DAY
        + _W_DATES * (len(a.dates) + len(b.dates))  # each date agrees at most once
        + _W_WEEKDAYS
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
