"""The compiled form of a rule set (terms, clauses, rules, topics) and of a document (word
and sentence coordinates, hits per group): the matcher's internals, kept apart so that
matcher.py reads as the algorithm."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from newsmon.pipeline.detection.schema import (
    Near,
)
from newsmon.pipeline.detection.text import (
    NormalizedText,
    normalize,
    sentence_starts,
    word_counts,
    word_starts,
)


@dataclass(frozen=True, slots=True)
class _Term:
    raw: str
    lang: str
    weight: float
    key: str  # normalized, wildcards removed
    left_open: bool
    right_open: bool
    literal: str | None  # case-sensitive surface, for "=US"
    group: int  # index into groups, or -1 for an entity term
    entity: int  # index into entities, or -1


class _Hit(NamedTuple):
    term: int
    start: int  # normalized offsets
    end: int


class _Reach(NamedTuple):
    """A ``Near`` as the matcher uses it: the unit, and how many units before and after the
    anchor a hit may be (worked out once per rule, not once per hit)."""

    unit: str
    before: int
    after: int


def _reach(near: Near) -> _Reach:
    span = near.size if near.unit == "words" else max(near.size - 1, 0)
    return _Reach(near.unit, 0 if near.side == "after" else span,
                  0 if near.side == "before" else span)


@dataclass(frozen=True, slots=True)
class _Clause:
    groups: tuple[int, ...]
    near: _Reach
    #: The same number for every equal clause of a rule set: the key under which a topic's
    #: evaluation remembers the clause's best hit near an anchor (rules repeat clauses).
    key: int = -1


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    anchor: tuple[int, ...]
    with_: tuple[_Clause, ...]
    without: tuple[_Clause, ...]
    weight: float
    max_count: int


@dataclass(frozen=True, slots=True)
class _Exclusion:
    context: tuple[int, ...]
    drops: frozenset[int]
    near: _Reach


@dataclass(frozen=True, slots=True)
class _Review:
    threshold: float
    score: float
    rules: tuple[_Rule, ...]


@dataclass(frozen=True, slots=True)
class _Topic:
    name: str
    threshold: float
    rules: tuple[_Rule, ...]
    exclude: tuple[_Exclusion, ...]
    attributes: tuple[tuple[str, tuple[int, ...]], ...]
    review: _Review | None


@dataclass(slots=True)
class _Firing:
    rule: _Rule
    anchor: _Hit
    matched: list[_Hit]
    strength: float


def _compile_term(raw: str, lang: str, weight: float, group: int, entity: int) -> _Term:
    literal = raw[1:] if raw.startswith("=") else None
    body = literal if literal is not None else raw
    return _Term(
        raw=raw,
        lang=lang,
        weight=weight,
        key=normalize(body.strip("*")).text.strip(),
        left_open=body.startswith("*"),
        right_open=body.endswith("*"),
        literal=literal,
        group=group,
        entity=entity,
    )


#: A ``_Segments`` map as its four lists: norm_start, norm_len, orig_start, orig_len.
_SegmentRows = tuple[list[int], list[int], list[int], list[int]]


@dataclass(slots=True)
class _Doc:
    """One document being classified, with lazily computed positions."""

    norm: NormalizedText
    _sentences: list[int] | None = None
    #: Word starts at or before each position (``word_counts``), or None before the first
    #: look-up and for text that ``word_counts`` leaves to ``word_starts`` (then ``_words``).
    _word_counts: npt.NDArray[np.int64] | None = None
    _words: list[int] | None = None
    _sentence_of: dict[int, int] = field(default_factory=dict)
    _word_of: dict[int, int] = field(default_factory=dict)

    def sentence_of(self, pos: int) -> int:
        index = self._sentence_of.get(pos)
        if index is None:
            if self._sentences is None:
                self._sentences = sentence_starts(self.norm.original)
            index = bisect_right(self._sentences, self.norm.original_offset(pos)) - 1
            self._sentence_of[pos] = index
        return index

    def _count_words(self) -> None:
        self._word_counts = word_counts(self.norm.text)
        if self._word_counts is None:
            self._words = word_starts(self.norm.text)

    def word_of(self, pos: int) -> int:
        index = self._word_of.get(pos)
        if index is None:
            if self._word_counts is None and self._words is None:
                self._count_words()
            if self._words is not None:
                index = max(bisect_right(self._words, pos) - 1, 0)
            else:
                assert self._word_counts is not None
                index = max(int(self._word_counts[pos]) - 1, 0)
            self._word_of[pos] = index
        return index

    def words_of(self, positions: list[int]) -> list[int]:
        """``word_of`` of each position, in one numpy gather where the text allows."""
        if self._word_counts is None and self._words is None:
            self._count_words()
        if self._word_counts is None:
            return [self.word_of(pos) for pos in positions]
        counts = self._word_counts[np.array(positions, dtype=np.intp)] - 1
        return list(np.maximum(counts, 0).tolist())

    def locate(
        self, split: Callable[[str], list[int] | None]
    ) -> tuple[list[int], _SegmentRows | None, _SegmentRows | None]:
        """What the compiled core needs to find a hit's sentence: the sentence starts
        (original offsets, by ``split``, else by ``sentence_starts`` where ``split`` gives
        None; kept for ``sentence_of``) and the text's two position maps as rows."""
        if self._sentences is None:
            self._sentences = split(self.norm.original)
            if self._sentences is None:
                self._sentences = sentence_starts(self.norm.original)
        space, fold = self.norm.space_map, self.norm.fold_map
        return (
            self._sentences,
            None if space is None else (space.norm_start, space.norm_len, space.orig_start,
                                        space.orig_len),
            None if fold is None else (fold.norm_start, fold.norm_len, fold.orig_start,
                                       fold.orig_len),
        )

    def coordinates(self, positions: list[int]) -> tuple[list[int], list[int]]:
        """``word_of`` and ``sentence_of`` of each position (positions of the text), the
        second as one search in numpy over the original offsets."""
        words = self.words_of(positions)
        if self._sentences is None:
            self._sentences = sentence_starts(self.norm.original)
        offsets = self.norm.original_offsets(np.array(positions, dtype=np.intp))
        sentences = np.searchsorted(np.array(self._sentences, dtype=np.intp), offsets,
                                    side="right") - 1
        return words, list(sentences.tolist())

    def sentence_bounds(self, index: int) -> tuple[int, int]:
        assert self._sentences is not None
        start = self._sentences[index]
        end = (
            self._sentences[index + 1]
            if index + 1 < len(self._sentences)
            else len(self.norm.original)
        )
        return start, end


class _GroupHits:
    """The hits of one group in a document, in text order, with coordinates for bisecting."""

    __slots__ = ("_sentences", "_words", "doc", "hits")

    def __init__(self, doc: _Doc, hits: list[_Hit]) -> None:
        self.doc = doc
        self.hits = hits
        self._sentences: list[int] | None = None
        self._words: list[int] | None = None

    def coords(self, unit: str) -> list[int]:
        """Each hit's word (``unit`` "words") or sentence index, computed once."""
        if unit == "words":
            if self._words is None:
                self._words = self.doc.words_of([h.start for h in self.hits])
            return self._words
        if self._sentences is None:
            sentence_of = self.doc.sentence_of
            self._sentences = [sentence_of(h.start) for h in self.hits]
        return self._sentences

    def near(self, anchor: _Hit, reach: _Reach) -> Sequence[_Hit]:
        unit = reach.unit
        if unit == "article":
            return self.hits
        if unit == "words":
            center = self.doc.word_of(anchor.start)
            coords = self._words if self._words is not None else self.coords(unit)
        else:
            center = self.doc.sentence_of(anchor.start)
            coords = self._sentences if self._sentences is not None else self.coords(unit)
        return self.hits[bisect_left(coords, center - reach.before) :
                         bisect_right(coords, center + reach.after)]
