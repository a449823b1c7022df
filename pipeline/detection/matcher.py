"""The matcher: a RuleSet compiled into one Aho-Corasick automaton, applied to a text.

``Classifier(rules).classify(text, lang, title)`` returns the topics whose score reaches their
threshold, the entities seen and the evidence; the rule language itself is described in
``detection/schema.py``.
"""

from __future__ import annotations

import functools
import operator
import pathlib
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

import ahocorasick

from newsmon.configfile import ConfigError
from newsmon.models import Classification, Entity, Evidence, TopicMatch
from newsmon.pipeline.detection._compiled import (
    _Clause,
    _compile_term,
    _Doc,
    _Exclusion,
    _Firing,
    _GroupHits,
    _Hit,
    _Reach,
    _reach,
    _Review,
    _Rule,
    _Term,
    _Topic,
)
from newsmon.pipeline.detection.schema import (
    Near,
    Rule,
    RuleSet,
    load_rules,
    reference_problems,
    rule_files,
)
from newsmon.pipeline.detection.text import (
    _ABBREVIATIONS,
    char_classes,
    is_abbreviation,
    is_unspaced,
    is_word_char,
    normalize,
    spaced_words,
)

if TYPE_CHECKING:
    from newsmon_native import Engine

__all__ = ["Classifier"]

#: A match the automaton reported and some term accepts: ``(end, -length, start, left_word,
#: right_word, term ids)``, sorted as the automaton reports (by end, longest first).
_Candidate = tuple[int, int, int, bool, bool, tuple[int, ...]]
#: A key of the spaced automaton in one boundary case: ``(length, tail, left_word,
#: right_word, key as written or None, term ids)``; ``tail`` is 1 where a space follows it.
_SpacedEntry = tuple[int, int, bool, bool, str | None, tuple[int, ...]]
_BY_SPAN = operator.attrgetter("start", "end")
#: _Hit(term, start, end) from a tuple, without the Python-level __new__ of a NamedTuple.
_new_hit = cast(Callable[[tuple[int, int, int]], _Hit], functools.partial(tuple.__new__, _Hit))


#: Classifier.shared: (class, resolved rule path) -> (stamp of the files read, classifier).
_SHARED: dict[tuple[type, pathlib.Path], tuple[tuple[tuple[str, int, int], ...], Classifier]] = {}
_SHARED_LOCK = threading.Lock()


#: Why the compiled core, and why Rust (issue 14, fourth round): after three rounds of Python
#: tuning, ~80% of classify was per-hit and per-clause Python work (the candidate loop, _fire,
#: _best). numba (wheels, no compiler) would have needed the Aho-Corasick walk rewritten by
#: hand for numba and a JIT compile in every worker; Cython in pure-Python mode leaves these
#: loops on Python objects. PyO3 with the well-kept aho-corasick crate moves the whole loop,
#: and builds to one abi3 wheel (make install; the Dockerfile's build stage).
_NATIVE_MISSING = (
    "newsmon's compiled detection core (package newsmon-native, module newsmon_native, built "
    "from native/ in the source tree) is not installed: run `make install`, or "
    "`pip install ./native` (needs cargo, https://rustup.rs)"
)


def _native_engine(
    spaced: dict[str, list[_SpacedEntry]],
    term_rows: list[tuple[bool, bool, int, bool, int, float]],
    topics: tuple[_Topic, ...],
    groups: int,
    max_evidence: int,
) -> Engine:
    """The rule set handed to the compiled core (native/src/lib.rs), as tuples."""
    try:
        # Imported here, not at the top: its absence is reported with how to build it.
        from newsmon_native import Engine
    except ImportError as exc:
        raise ImportError(_NATIVE_MISSING) from exc
    units = {"words": 0, "sentences": 1, "article": 2}

    def reach(near: _Reach) -> tuple[int, int, int]:
        return (units[near.unit], near.before, near.after)

    def clauses(items: tuple[_Clause, ...]) -> list[tuple[tuple[int, ...], tuple[int, int, int]]]:
        return [(c.groups, reach(c.near)) for c in items]

    def rules(items: tuple[_Rule, ...]) -> list[tuple[object, ...]]:
        return [(r.anchor, clauses(r.with_), clauses(r.without), r.weight, r.max_count)
                for r in items]

    return Engine(
        list(spaced),
        [[(length, tail, left, right, surface, ids)
          for length, tail, left, right, surface, ids in entries]
         for entries in spaced.values()],
        term_rows,
        [(topic.threshold, rules(topic.rules),
          [(e.context, tuple(sorted(e.drops)), reach(e.near)) for e in topic.exclude],
          [groups_ for _, groups_ in topic.attributes],
          None if topic.review is None else (topic.review.threshold, topic.review.score,
                                             rules(topic.review.rules)))
         for topic in topics],
        groups,
        max_evidence,
    )


@functools.cache
def _native_splitter() -> Callable[[str], list[int] | None]:
    """``text.sentence_starts`` in compiled code (None for text it leaves to Python)."""
    from newsmon_native import Sentences

    return Sentences(char_classes(), _ABBREVIATIONS, is_abbreviation).starts


def _snippet(original: str, sentence: tuple[int, int], start: int, end: int,
             width: int = 90) -> str:
    """The sentence (its original bounds) around a span, cut to ``width`` characters either
    side of it, its white space runs written as one space."""
    s_start, s_end = sentence
    left = max(s_start, start - width)
    right = min(s_end, end + width)
    snippet = " ".join(original[left:right].split())
    return ("…" if left > s_start else "") + snippet + ("…" if right < s_end else "")


class Classifier:
    """Classifies articles against a rule set. Build once; ``classify`` is pure and thread-safe.

    Matching and rule evaluation run in the compiled core (``newsmon_native``, built from
    native/), which is required: without it the constructor raises ImportError saying how to
    build it. ``reference=True`` runs the Python code instead, the reference the compiled
    core is tested against (tests/pipeline/detection/test_native.py); same output, ~3x the
    CPU.

    Picklable (Beam pickles DoFns): only the validated ``RuleSet`` (and the choice of path) is
    pickled and the automaton is rebuilt on unpickling.
    """

    def __init__(self, rules: RuleSet, *, reference: bool = False) -> None:
        problems = reference_problems(rules)
        if problems:
            raise ConfigError([f"rule set: {problem}" for problem in problems])
        self._reference = reference
        self._compile(rules)

    @classmethod
    def from_path(cls, path: pathlib.Path) -> Classifier:
        return cls(load_rules(path))

    @classmethod
    def shared(cls, path: pathlib.Path) -> Classifier:
        """This process's Classifier for the rule file at ``path``, built on first use and
        built again when the rule file or one of its term files changes (path, mtime and size
        of each, and the set of term files). The stages that classify (ClassifyTopicsFn) and
        fingerprint (GroupStoriesFn) then share one automaton per worker process instead of
        loading and compiling the rule set each (~1 s of a batch run). ``classify`` is pure,
        so sharing is safe across threads."""
        key = (cls, path.resolve())
        with _SHARED_LOCK:
            try:
                stamp = tuple((str(f), st.st_mtime_ns, st.st_size)
                              for f in rule_files(key[1]) for st in (f.stat(),))
            except OSError:
                return cls.from_path(path)  # reports the unreadable file
            held = _SHARED.get(key)
            if held is not None and held[0] == stamp:
                return held[1]
            classifier = cls.from_path(path)
            _SHARED[key] = (stamp, classifier)
            return classifier

    @property
    def rules(self) -> RuleSet:
        return self._rules

    @property
    def compiled(self) -> bool:
        """Whether ``classify`` runs in the compiled core (False only with ``reference``)."""
        return self._engine is not None

    def __getstate__(self) -> dict[str, object]:
        return {"rules": self._rules, "reference": self._reference}

    def __setstate__(self, state: dict[str, object]) -> None:
        self._reference = bool(state.get("reference", False))
        rules = state["rules"]
        assert isinstance(rules, RuleSet)
        self._compile(rules)

    def _compile(self, rules: RuleSet) -> None:
        self._rules = rules
        self._group_names = list(rules.groups)
        index = {name: i for i, name in enumerate(self._group_names)}
        terms: list[_Term] = []
        for g_i, group in enumerate(rules.groups.values()):
            for lang, weights in group.terms.items():
                terms.extend(_compile_term(t, lang, w, g_i, -1) for t, w in weights.items())
        for e_i, entity in enumerate(rules.entities):
            for lang, weights in entity.terms.items():
                terms.extend(_compile_term(t, lang, w, -1, e_i) for t, w in weights.items())
        self._terms = terms
        self._weights = [term.weight for term in terms]
        # What _find reads of a term, in one tuple (its loop runs for every match); the
        # concept is the group, or the entity as a negative number.
        self._term_rows = [
            (term.left_open, term.right_open, term.lang, term.literal,
             term.group if term.group >= 0 else -1 - term.entity, term.weight)
            for term in terms
        ]
        by_key: dict[str, list[int]] = {}
        # With every language's terms applying to every text, many languages write the same
        # word for the same concept (ukraine, nato, kontingent*): only the heaviest (the first
        # of equal weight) of such twins can win a hit in _find, so the others are not looked
        # at. With match_all_languages false the language decides, and all are kept.
        kept: dict[tuple[str, int, int, bool, bool, str | None], int] = {}
        for t_i, term in enumerate(terms):
            twin = (term.key, term.group, term.entity, term.left_open, term.right_open,
                    term.literal)
            if rules.match_all_languages and twin in kept:
                if terms[kept[twin]].weight >= term.weight:
                    continue
                by_key[term.key].remove(kept[twin])
            kept[twin] = t_i
            by_key.setdefault(term.key, []).append(t_i)
        automaton = ahocorasick.Automaton()
        for key, ids in by_key.items():
            # Whether any term on this key may continue a word to the left or right: most raw
            # matches (short words inside longer ones) are rejected on these two flags alone.
            left_open = any(terms[i].left_open for i in ids)
            right_open = any(terms[i].right_open for i in ids)
            # A key that starts (ends) in a script without spaces (CJK, kana, Thai) has a word
            # boundary before (after) it wherever it occurs: it matches inside a run of text.
            left_free, right_free = is_unspaced(key[0]), is_unspaced(key[-1])
            automaton.add_word(
                key, (len(key), tuple(ids), left_open, right_open, left_free, right_free)
            )
        automaton.make_automaton()
        self._automaton = automaton
        self._by_key = by_key
        spaced_table = self._spaced_keys(by_key)

        def groups(names: Iterable[str]) -> tuple[int, ...]:
            return tuple(index[name] for name in names)

        clause_keys: dict[tuple[tuple[int, ...], _Reach], int] = {}

        def clause(names: Iterable[str], near: Near) -> _Clause:
            shape = (groups(names), _reach(near))
            return _Clause(*shape, key=clause_keys.setdefault(shape, len(clause_keys)))

        def compile_rules(rule_list: Iterable[Rule]) -> tuple[_Rule, ...]:
            return tuple(
                _Rule(
                    id=rule.id,
                    anchor=groups(rule.anchor),
                    with_=tuple(clause(c.groups, c.near or rule.near) for c in rule.with_),
                    without=tuple(clause(c.groups, c.near or rule.near) for c in rule.without),
                    weight=rule.weight,
                    max_count=rule.max_count,
                )
                for rule in rule_list
            )

        topics = []
        for name, topic in rules.topics.items():
            exclusions = tuple(
                _Exclusion(groups(e.context), frozenset(groups(e.drops)), _reach(e.near))
                for e in topic.exclude
            )
            attributes = tuple((a.value, groups(a.any)) for a in topic.attributes)
            review = (
                _Review(topic.review.threshold, topic.review.score,
                        compile_rules(topic.review.rules))
                if topic.review is not None
                else None
            )
            topics.append(
                _Topic(name, topic.threshold, compile_rules(topic.rules), exclusions, attributes,
                       review)
            )
        self._topics = tuple(topics)
        self._languages = frozenset(rules.languages)
        self._lang_ids = {lang: i for i, lang in enumerate(dict.fromkeys(t.lang for t in terms))}
        self._split = None if self._reference else _native_splitter()
        self._engine = None if self._reference else _native_engine(
            spaced_table,
            [(t.left_open, t.right_open, self._lang_ids[t.lang], t.literal is not None,
              row[4], t.weight) for t, row in zip(terms, self._term_rows, strict=True)],
            self._topics,
            len(self._group_names),
            rules.max_evidence,
        )

    @functools.cached_property
    def _spaced_automaton(self) -> ahocorasick.Automaton:
        """The Python reference's automaton over ``spaced_words(text)``, built on first use:
        the compiled core has its own."""
        automaton = ahocorasick.Automaton()
        for pattern, entries in self._spaced_keys(self._by_key).items():
            automaton.add_word(pattern, tuple(entries))
        automaton.make_automaton()
        return automaton

    def _spaced_keys(self, by_key: dict[str, list[int]]) -> dict[str, list[_SpacedEntry]]:
        """The keys (and what each stands for) of the automaton that ``_candidates`` runs
        over ``spaced_words(text)``.

        A key is entered once for each of the four cases (word or boundary before it, word or
        boundary after it) that some term on it accepts, with a space on each boundary side,
        and only the terms that accept that case: a match inside a longer word of a key whose
        terms want whole words is not there to be found. Keys with characters from U+0E00 up
        cannot occur in text that ``spaced_words`` accepts and are left out. Several keys can
        read the same once spaced (``u.s``, ``u s``): each entry keeps its key as written when
        that has a character other than a letter or digit, to be compared with the text."""
        spaced: dict[str, list[_SpacedEntry]] = {}
        for key, ids in by_key.items():
            written = spaced_words(key)
            if written is None:
                continue
            bare = written[1:-1]
            surface = None if bare == key and " " not in key else key
            for left_word, right_word in ((False, False), (True, False), (False, True),
                                          (True, True)):
                accepted = tuple(
                    i for i in ids
                    if (self._terms[i].left_open or not left_word)
                    and (self._terms[i].right_open or not right_word)
                )
                if not accepted:
                    continue
                pattern = ("" if left_word else " ") + bare + ("" if right_word else " ")
                spaced.setdefault(pattern, []).append(
                    (len(key), 0 if right_word else 1, left_word, right_word, surface, accepted)
                )
        return spaced

    # --- matching ------------------------------------------------------------------------

    @staticmethod
    def document(text: str, title: str = "") -> str:
        """The string that evidence offsets refer to: ``title + "\\n\\n" + text``, or ``text``."""
        return f"{title}\n\n{text}" if title else text

    def _candidates(self, text: str, spaced: str | None) -> list[_Candidate]:
        """The automaton's matches of rule keys that some term on them accepts where they stand,
        as ``(end, -length, start, left_word, right_word, term ids)`` in the automaton's order
        (by end, longest first): ``left_word`` (``right_word``) is whether the match continues a
        word on that side.

        With ``spaced`` (``text_mod.spaced_words(text)``) the second automaton, whose keys
        carry the boundaries they need as spaces, finds them in ``spaced`` and most matches
        inside longer words are never reported; else the first automaton walks ``text`` and
        each match is checked character by character (the reference, and the path of text with
        scripts without spaces)."""
        if spaced is not None:
            found: list[_Candidate] = []
            for last, entries in self._spaced_automaton.iter(spaced):
                for length, tail, left_word, right_word, surface, ids in entries:
                    end = last - tail
                    start = end - length
                    # spaced[start] is text[start - 1], spaced[end + 1] is text[end].
                    if left_word and spaced[start] == " ":
                        continue
                    if right_word and spaced[end + 1] == " ":
                        continue
                    if surface is not None and text[start:end] != surface:
                        continue
                    found.append((end, -length, start, left_word, right_word, ids))
            # Matches of one end come longest first, as from the first automaton; its keys end
            # where the second automaton's keys end, or a space further.
            found.sort()
            return found
        size = len(text)
        candidates: list[_Candidate] = []
        matches = self._automaton.iter(text)
        for last, (length, ids, any_left_open, any_right_open, left_free, right_free) in matches:
            start, end = last - length + 1, last + 1
            # Whether the match continues a word on either side: is_word_char, inlined with its
            # cheap test first (this loop runs for every raw match); never across a script
            # without spaces.
            left_word = (
                start > 0
                and not left_free
                and (char := text[start - 1]).isalnum()
                and (char < "\u0e00" or not is_unspaced(char))
            )
            if left_word and not any_left_open:
                continue
            right_word = (
                end < size
                and not right_free
                and (char := text[end]).isalnum()
                and (char < "\u0e00" or not is_unspaced(char))
            )
            if right_word and not any_right_open:
                continue
            candidates.append((end, -length, start, left_word, right_word, ids))
        return candidates

    def _find(self, doc: _Doc, lang: str | None) -> list[_Hit]:
        text = doc.norm.text
        size = len(text)
        spaced = spaced_words(text)
        only: tuple[str, ...] | None = None
        if not self._rules.match_all_languages and lang in self._rules.languages:
            only = (lang, "any")
        best: dict[tuple[int, int, int], _Hit] = {}
        rows, weights = self._term_rows, self._weights
        for end, _, start, left_word, right_word, ids in self._candidates(text, spaced):
            for t_i in ids:
                left_open, right_open, term_lang, literal, concept, weight = rows[t_i]
                if (left_word and not left_open) or (right_word and not right_open):
                    continue
                if only is not None and term_lang not in only:
                    continue
                h_start, h_end = start, end
                if spaced is not None:
                    # To the spaces around the word (spaced has the offsets of text plus one).
                    if left_word and left_open:
                        h_start = spaced.rfind(" ", 0, start + 1)
                    if right_word and right_open:
                        h_end = spaced.find(" ", end + 1) - 1
                else:
                    # is_word_char, inlined with its cheap test first: most words are in scripts
                    # below U+0E00, where a letter or digit is all it takes.
                    if left_open:
                        while h_start > 0 and text[h_start - 1].isalnum() and (
                            text[h_start - 1] < "\u0e00" or is_word_char(text[h_start - 1])
                        ):
                            h_start -= 1
                    if right_open:
                        while h_end < size and text[h_end].isalnum() and (
                            text[h_end] < "\u0e00" or is_word_char(text[h_end])
                        ):
                            h_end += 1
                if literal is not None:
                    o_start, o_end = doc.norm.span(start, end)
                    if doc.norm.original[o_start:o_end] != literal:
                        continue
                # The same word often matches one concept in several languages (or as both
                # "ukrain*" and "ukraine"): keep one hit per concept and span, the heaviest.
                owner = (concept, h_start, h_end)
                kept = best.get(owner)
                if kept is None or weights[kept.term] < weight:
                    best[owner] = _new_hit((t_i, h_start, h_end))
        return sorted(best.values(), key=_BY_SPAN)

    def classify(self, text: str, lang: str | None = None, title: str = "") -> Classification:
        """Topics at or above their threshold, with evidence, and the entities mentioned.

        Evidence offsets refer to ``Classifier.document(text, title)``: the text itself when
        ``title`` is empty (the usual case), else ``title + "\\n\\n" + text``, so a title span
        starts before ``len(title)`` and a body span at ``len(title) + 2`` or later.
        ``lang`` (the article's language, "und" when unknown) decides two things: with
        ``match_all_languages: false`` only its terms apply; and when it is given but not one of
        the file's ``languages``, a topic whose own rules fall short may still be reported by
        its ``review`` rules, with ``review=True`` and the review's lower score.
        """
        doc = _Doc(normalize(self.document(text, title)))
        if self._engine is None:
            return self._classify_reference(doc, lang)
        uncovered = lang is not None and lang not in self._languages
        norm = doc.norm
        spaced = spaced_words(norm.text)
        if spaced is not None:
            assert self._split is not None  # built with the engine
            # Matching, word and sentence coordinates and rule evaluation in one call.
            h_terms, h_starts, h_ends, entity_ids, results = self._engine.classify(
                norm.text, spaced, self._only(lang),
                lambda start, end, t_i: self._literal_ok(doc, start, end, t_i),
                functools.partial(doc.locate, self._split), uncovered,
            )
        else:
            # Text with characters from U+0E00 up (scripts without spaces; also lone
            # surrogates, which a Rust string cannot hold) keeps the Python matcher; rule
            # evaluation is compiled for every text.
            found = self._find(doc, lang)
            h_terms = [h.term for h in found]
            h_starts = [h.start for h in found]
            h_ends = [h.end for h in found]
            rows = self._term_rows
            entity_ids = list(dict.fromkeys(
                -1 - rows[t][4] for t in h_terms if rows[t][4] < 0))
            results = []
            if h_starts:
                words, sentences = doc.coordinates(h_starts)
                results = self._engine.evaluate(
                    h_terms, h_starts, h_ends, words, sentences, uncovered)
        entities: dict[tuple[str, str], Entity] = {}
        for e_i in entity_ids:
            entity = self._rules.entities[e_i]
            if (entity.kind, entity.name) not in entities:
                entities[(entity.kind, entity.name)] = Entity(kind=entity.kind, name=entity.name)
        matches: list[TopicMatch] = []
        original, names, terms = norm.original, self._group_names, self._terms
        for t_i, score, review, groups, chosen, attribute in results:
            topic = self._topics[t_i]
            evidence = []
            for hit, sentence in chosen:
                term = terms[h_terms[hit]]
                start, end = norm.span(h_starts[hit], h_ends[hit])
                evidence.append(Evidence(
                    group=names[term.group], term=term.raw, start=start, end=end,
                    snippet=_snippet(original, doc.sentence_bounds(sentence), start, end),
                ))
            matches.append(TopicMatch(
                topic=topic.name,
                score=round(score, 3),
                review=review,
                groups=tuple(names[g] for g in groups),
                evidence=tuple(evidence),
                attribute=topic.attributes[attribute][0] if attribute >= 0 else None,
            ))
        return Classification(topics=tuple(matches), entities=tuple(entities.values()))

    def _only(self, lang: str | None) -> list[int] | None:
        """The ids of the term languages that apply to a text in ``lang`` (None: all)."""
        if self._rules.match_all_languages or lang not in self._rules.languages:
            return None
        return [self._lang_ids[code] for code in (lang, "any") if code in self._lang_ids]

    def _literal_ok(self, doc: _Doc, start: int, end: int, t_i: int) -> bool:
        """Whether the original text under a normalized span is the term's literal surface."""
        o_start, o_end = doc.norm.span(start, end)
        return doc.norm.original[o_start:o_end] == self._terms[t_i].literal

    def _classify_reference(self, doc: _Doc, lang: str | None) -> Classification:
        """``classify`` in Python: the reference the compiled core is tested against."""
        hits = self._find(doc, lang)
        by_group: dict[int, list[_Hit]] = {}
        entities: dict[tuple[str, str], Entity] = {}
        rows = self._term_rows
        for hit in hits:
            concept = rows[hit.term][4]
            if concept >= 0:
                by_group.setdefault(concept, []).append(hit)
            else:
                entity = self._rules.entities[-1 - concept]
                key = (entity.kind, entity.name)
                if key not in entities:  # one Entity per name, not one per mention
                    entities[key] = Entity(kind=entity.kind, name=entity.name)
        uncovered = lang is not None and lang not in self._languages
        # One set of per-group hits for all topics: their coordinates are computed once per
        # document, not once per topic (a topic's exclusions replace its own copies only).
        grouped = {g: _GroupHits(doc, h) for g, h in by_group.items()}
        matches = []
        for topic in self._topics:
            match = self._match_topic(doc, topic, by_group, grouped, uncovered)
            if match is not None:
                matches.append(match)
        return Classification(topics=tuple(matches), entities=tuple(entities.values()))

    def _match_topic(
        self,
        doc: _Doc,
        topic: _Topic,
        by_group: dict[int, list[_Hit]],
        grouped: dict[int, _GroupHits],
        uncovered: bool = False,
    ) -> TopicMatch | None:
        hits = dict(grouped) if topic.exclude else grouped
        for exclusion in topic.exclude:
            context = [h for g in exclusion.context if g in hits for h in hits[g].hits]
            if not context:
                continue
            for g in exclusion.drops & hits.keys():
                dropped = {h for c in context for h in hits[g].near(c, exclusion.near)}
                if dropped:
                    hits[g] = _GroupHits(doc, [h for h in hits[g].hits if h not in dropped])
        # A clause's best hit near an anchor, per (anchor, clause key): the topic's rules share
        # anchors and repeat clauses (every troop rule has the same four exclusions).
        memo: dict[tuple[_Hit, int], _Hit | None] = {}
        firings: list[_Firing] = []
        for rule in topic.rules:
            firings.extend(self._fire(doc, rule, hits, memo))
        score = sum(f.strength for f in firings)
        review = False
        if (not firings or score < topic.threshold) and uncovered and topic.review is not None:
            firings = [
                f for rule in topic.review.rules for f in self._fire(doc, rule, hits, memo)
            ]
            if firings and sum(f.strength for f in firings) >= topic.review.threshold:
                score, review = topic.review.score, True
        if not firings or (score < topic.threshold and not review):
            return None
        return self._topic_match(
            doc, topic, score, review,
            [(f.strength, (f.anchor, *f.matched)) for f in firings],
            self._attribute(doc, topic, firings, by_group),
        )

    def _topic_match(
        self,
        doc: _Doc,
        topic: _Topic,
        score: float,
        review: bool,
        firings: list[tuple[float, tuple[_Hit, ...]]],
        attribute: str | None,
    ) -> TopicMatch:
        """The result for a topic that matched: ``firings`` as (strength, (anchor, matched
        hits...)), in the order the topic's rules listed them."""
        return TopicMatch(
            topic=topic.name,
            score=round(score, 3),
            review=review,
            groups=tuple(
                dict.fromkeys(
                    self._group_names[self._terms[h.term].group]
                    for _, firing_hits in firings
                    for h in firing_hits
                )
            ),
            evidence=self._evidence(doc, firings),
            attribute=attribute,
        )

    def _fire(
        self,
        doc: _Doc,
        rule: _Rule,
        hits: dict[int, _GroupHits],
        memo: dict[tuple[_Hit, int], _Hit | None],
    ) -> list[_Firing]:
        """The rule's firings: the strongest per sentence, the ``max_count`` strongest overall.

        ``memo`` holds the ``_best`` hit per (anchor, clause key) for this ``hits``."""
        best: dict[int, _Firing] = {}
        for g in rule.anchor:
            for anchor in hits[g].hits if g in hits else ():
                strength = self._terms[anchor.term].weight
                sentence = doc.sentence_of(anchor.start)
                kept = best.get(sentence)
                if kept is not None and kept.strength >= strength * rule.weight:
                    continue  # this anchor cannot beat the sentence's firing
                matched: list[_Hit] = []
                for clause in rule.with_:
                    found = self._best(anchor, clause, hits, memo)
                    if found is None:
                        break
                    matched.append(found)
                    strength = min(strength, self._terms[found.term].weight)
                else:
                    if any(self._best(anchor, clause, hits, memo) for clause in rule.without):
                        continue
                    if kept is None or strength * rule.weight > kept.strength:
                        best[sentence] = _Firing(rule, anchor, matched, strength * rule.weight)
        ranked = sorted(best.values(), key=lambda f: (-f.strength, f.anchor.start))
        return ranked[: rule.max_count]

    def _best(
        self,
        anchor: _Hit,
        clause: _Clause,
        hits: dict[int, _GroupHits],
        memo: dict[tuple[_Hit, int], _Hit | None],
    ) -> _Hit | None:
        """The heaviest, then nearest, hit of the clause's groups near the anchor (not on it);
        remembered in ``memo``, which must belong to this ``hits``."""
        key = (anchor, clause.key)
        if key in memo:
            return memo[key]
        best: _Hit | None = None
        best_rank: tuple[float, int] = (0.0, 0)
        weights = self._weights
        a_start, a_end = anchor.start, anchor.end
        for g in clause.groups:
            if g not in hits:
                continue
            for hit in hits[g].near(anchor, clause.near):
                if hit.start < a_end and a_start < hit.end:
                    continue  # the anchor's own words cannot stand for another concept
                rank = (weights[hit.term], -abs(hit.start - a_start))
                if best is None or rank > best_rank:
                    best, best_rank = hit, rank
        memo[key] = best
        return best

    def _evidence(
        self, doc: _Doc, firings: list[tuple[float, tuple[_Hit, ...]]]
    ) -> tuple[Evidence, ...]:
        ordered = sorted(firings, key=lambda f: -f[0])
        chosen: dict[tuple[int, int, int], _Hit] = {}
        limit = self._rules.max_evidence
        for _, firing_hits in ordered:
            for hit in firing_hits:
                group = self._terms[hit.term].group
                chosen.setdefault((hit.start, hit.end, group), hit)
            if len(chosen) >= limit:
                break
        evidence = []
        for hit in sorted(chosen.values(), key=lambda h: (h.start, h.end))[:limit]:
            term = self._terms[hit.term]
            start, end = doc.norm.span(hit.start, hit.end)
            evidence.append(
                Evidence(
                    group=self._group_names[term.group],
                    term=term.raw,
                    start=start,
                    end=end,
                    snippet=self._snippet(doc, hit, start, end),
                )
            )
        return tuple(evidence)

    @staticmethod
    def _snippet(doc: _Doc, hit: _Hit, start: int, end: int) -> str:
        return _snippet(doc.norm.original, doc.sentence_bounds(doc.sentence_of(hit.start)),
                        start, end)

    def _attribute(
        self, doc: _Doc, topic: _Topic, firings: list[_Firing], by_group: dict[int, list[_Hit]]
    ) -> str | None:
        if not topic.attributes:
            return None
        sentences = {doc.sentence_of(f.anchor.start) for f in firings}
        # The first attribute (in file order) with a hit in a sentence that fired wins: the
        # file lists the marked readings (a denial, a request) before the default ones.
        for value, groups in topic.attributes:
            for g in groups:
                if any(doc.sentence_of(hit.start) in sentences for hit in by_group.get(g, ())):
                    return value
        return None
