"""The facts of one article, in a form two languages can compare (``StoryFeatures``), and
their extraction (``StoryMatcher.features``). See ``newsmon.pipeline.story`` for what each
fact is; ``newsmon.pipeline.story.match`` compares two articles' facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from anyascii import anyascii

from newsmon.models import Classification
from newsmon.pipeline.detection import Classifier

from .words import COMMON_CAPITALISED, Calendar, number, skeleton, small_count

__all__ = ["LEAD_CHARS", "StoryFeatures", "StoryMatcher"]

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
# Digits with thousands separators (comma, dot, thin or plain space) and a decimal part.
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:[ \u00a0\u202f.,]\d{3})+(?![\d])|\d+(?:[.,]\d+)?")
#: A date written with digits in Chinese, Japanese or Korean: 11月20日, 11월 20일 (no month
#: names there for ``Calendar`` to read).
_CJK_DATE = re.compile(r"(\d{1,2})\s*[月월]\s*(\d{1,2})\s*[日일]")
#: A day of the month alone (19日, "on the 19th"): not a figure either.
_CJK_DAY = re.compile(r"\d{1,2}\s*[日일]")
#: Punctuation after which a capital opens a sentence (or a quotation) rather than a name.
_SENTENCE_END = frozenset('.!?…:»"“„«')
_TOKEN = re.compile(r"\w+", re.UNICODE)
_STEM = 5
#: How much of a text is read: a report states its facts in the lead, the rest of a long
#: article adds background (other dates, other figures) that blurs the match and costs time.
#: The gold leads are at most 520 characters.
LEAD_CHARS = 1200
_MIN_WORD = 4
#: Words whose facts are remembered (about 30 MB at most).
_WORD_FACTS_MAX = 200_000
#: month, weekday, name skeleton, count of one word (``StoryMatcher._facts_of``).
_WordFacts = tuple[int | None, int | None, str | None, str | None]
#: The end of a lead's first sentence: where an article has no title, its first sentence
#: stands in for one (a lead opens with what the headline says).
_FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True)
class StoryFeatures:
    """What one article says, in a form two languages can compare. Frozen and JSON-able."""

    entities: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    #: Stems of the title's words, or of the lead's first sentence where there is no title.
    title_stems: frozenset[str] = frozenset()
    #: Dates named in the text, as "month-day" (November 19 -> "11-19").
    dates: frozenset[str] = frozenset()
    #: Weekdays named in the text, 0 = Monday ("said on Tuesday").
    weekdays: frozenset[str] = frozenset()
    #: Small counts, two to twelve, in digits or words of many languages ("six missiles",
    #: "sechs Raketen", "6 ракет" -> "6"); ``numbers`` holds the larger figures.
    counts: frozenset[str] = frozenset()
    #: The topics the rules detect, each with its attribute ("troops:denied",
    #: "strikes:used"): a denial and the claim it denies are two events.
    topics: frozenset[str] = frozenset()
    #: The rule set's concept groups that fired, by topic ("long_range_strike:SUPPLY",
    #: "troop_deployment:DEPLOY"): what the report says happened, in the terms of every
    #: language the rules cover.
    groups: frozenset[str] = frozenset()
    lang: str = "und"
    #: Days since 0001-01-01 of the publication date; None when the source gave none.
    day: int | None = None

    def to_doc(self) -> dict[str, Any]:
        """The stored form (the search server keeps it unindexed, beside the MinHash)."""
        return {
            "entities": sorted(self.entities),
            "names": sorted(self.names),
            "numbers": sorted(self.numbers),
            "title_stems": sorted(self.title_stems),
            "dates": sorted(self.dates),
            "weekdays": sorted(self.weekdays),
            "counts": sorted(self.counts),
            "topics": sorted(self.topics),
            "groups": sorted(self.groups),
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
                title_stems=strings("title_stems"),
                dates=strings("dates"),
                weekdays=strings("weekdays"),
                counts=strings("counts"),
                topics=strings("topics"),
                groups=strings("groups"),
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
        self.calendar = Calendar(classifier.rules.languages)
        # An entity is counted once, as an entity: its terms are not names as well.
        # Nor are the words of its canonical name (the "Emmanuel" of "Emmanuel Macron").
        words: list[str] = []
        for entity in classifier.rules.entities:
            words.extend(entity.name.split())
            words.extend(term.strip("=*") for weights in entity.terms.values() for term in weights)
        words.extend(COMMON_CAPITALISED)
        self._known_names = frozenset(skeleton(word) for word in words if word)
        # What each word says, by word: news repeats its vocabulary, and transliterating and
        # skeletonising every token again was a third of the cost of ``features``.
        self._word_facts: dict[str, _WordFacts] = {}
        #: The title stem of each word ("" for a word too short to have one), by word.
        self._stems: dict[str, str] = {}

    def _facts_of(self, word: str) -> _WordFacts:
        """Month, weekday, name skeleton (for a capitalised word) and count of one token."""
        lower = word.lower()
        name = None
        month, weekday = self.calendar.month(lower), self.calendar.day(lower)
        if word[0].isupper() and len(word) >= _MIN_WORD and month is None and weekday is None:
            consonants = skeleton(word)
            if len(consonants) >= 3 and consonants not in self._known_names:
                name = consonants
        facts = (month, weekday, name, small_count(lower))
        if len(self._word_facts) >= _WORD_FACTS_MAX:
            self._word_facts.clear()  # bounded: a long-running worker meets endless names
        self._word_facts[word] = facts
        return facts

    def _stem_of(self, word: str) -> str:
        """A word's title stem: transliterated, lowercase, cut to ``_STEM`` letters; "" for a
        word shorter than ``_MIN_WORD`` letters once transliterated."""
        latin = anyascii(word)
        stem = latin.lower()[:_STEM] if len(latin) >= _MIN_WORD else ""
        if len(self._stems) >= _WORD_FACTS_MAX:
            self._stems.clear()
        self._stems[word] = stem
        return stem

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
        groups = frozenset(f"{t.topic}:{g}" for t in classification.topics for g in t.groups)
        names: set[str] = set()
        dates: set[str] = set()
        weekdays: set[str] = set()
        counts: set[str] = set()
        facts = self._word_facts
        numbers: set[str] = set()
        for line in body.splitlines():
            tokens = list(_TOKEN.finditer(line))
            digits: list[int] = []
            # The day of a date ("19 November", "November 19", "19. listopada", "le 19
            # novembre") is a date, not a figure or a count: "26 February" must not agree
            # with "26 countries".
            date_days: set[int] = set()
            for i, match in enumerate(tokens):
                word = match.group()
                if word[0].isdigit():
                    digits.append(i)
                    continue
                found = facts.get(word)
                if found is None:
                    found = self._facts_of(word)
                month, weekday, name, small = found
                if small is not None:
                    counts.add(small)
                if month is not None:
                    for j in (i - 1, i + 1):
                        if 0 <= j < len(tokens) and tokens[j].group().isdigit():
                            day = int(tokens[j].group())
                            if 1 <= day <= 31:
                                dates.add(f"{month}-{day}")
                                date_days.add(j)
                if weekday is not None:
                    weekdays.add(str(weekday))
                # A capital that opens a sentence says nothing; elsewhere it marks a name.
                if name is not None and i and _SENTENCE_END.isdisjoint(
                        line[tokens[i - 1].end() : match.start()]):
                    names.add(name)
            for i in digits:
                if i not in date_days and (small := small_count(tokens[i].group())) is not None:
                    counts.add(small)
            spans = [tokens[j].span() for j in date_days]
            if "月" in line or "월" in line or "日" in line or "일" in line:
                for match in _CJK_DATE.finditer(line):
                    month_number, day = int(match.group(1)), int(match.group(2))
                    if 1 <= month_number <= 12 and 1 <= day <= 31:
                        dates.add(f"{month_number}-{day}")
                        spans.append(match.span())
                spans += [match.span() for match in _CJK_DAY.finditer(line)]
            for begin, stop in sorted(spans, reverse=True):
                line = f"{line[:begin]}{' ' * (stop - begin)}{line[stop:]}"
            numbers.update(n for raw in _NUMBER.findall(line) if (n := number(raw)) is not None)
        headline = title or _FIRST_SENTENCE.split(lead, maxsplit=1)[0]
        title_stems: set[str] = set()
        for word in _WORD.findall(headline):
            stem = self._stems.get(word)
            if stem is None:
                stem = self._stem_of(word)
            if stem:
                title_stems.add(stem)
        return StoryFeatures(
            entities=entities,
            names=frozenset(names),
            numbers=frozenset(numbers),
            title_stems=frozenset(title_stems),
            dates=frozenset(dates),
            weekdays=frozenset(weekdays),
            counts=frozenset(counts),
            topics=topics,
            groups=groups,
            lang=lang or "und",
            day=_day(published),
        )


