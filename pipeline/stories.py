"""Story grouping: which earlier article, if any, a new one copies or reports the event of.

Exact copies share a text hash; rewrites of one wire story share enough word shingles that
their MinHash signatures agree. Signatures are split into LSH bands whose keys are stored
with each article, so the candidates for a new article are found with one terms query.
Translations and independent rewrites share neither: they share facts (entities, names,
figures, dates, the day), which ``story`` compares, with blocking keys stored beside
the bands so that they too are found with a terms query.
Pure logic: the Beam transform in app.py feeds it candidates from the store.
"""

from __future__ import annotations

import functools
import heapq
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from datasketch import MinHash

from newsmon.models import content_id

from .story import (
    SAME_STORY_THRESHOLD,
    StoryFeatures,
    blocking_keys,
    may_reach,
    score,
)

NUM_PERM = 128
#: 32 bands of 4 rows: a pair with Jaccard 0.5 becomes a candidate with probability ~0.87,
#: an unrelated pair (Jaccard ~0.02) almost never; candidates are then checked on the
#: full signature, so the band count only trades look-up cost against recall.
BANDS = 32
ROWS = NUM_PERM // BANDS
#: Estimated Jaccard similarity of word bigrams above which two texts are one story.
#: Rewrites of one agency report by different outlets measure 0.35-0.8 in our fixtures;
#: different stories on the same topic stay below 0.15.
NEAR_DUPLICATE_THRESHOLD = 0.35
_SEED = 7
_TOKEN = re.compile(r"\w+", re.UNICODE)
_MIN_TOKENS = 8


def shingles(text: str, size: int = 2) -> set[bytes]:
    tokens = _TOKEN.findall(text.lower())
    if len(tokens) < size:
        return {" ".join(tokens).encode()} if tokens else set()
    return {" ".join(tokens[i : i + size]).encode() for i in range(len(tokens) - size + 1)}


def signature(text: str) -> tuple[int, ...]:
    """MinHash signature of the word bigrams; empty for texts too short to compare."""
    grams = shingles(text)
    if len(grams) < _MIN_TOKENS:
        return ()
    template = _template()
    mh = MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=template.permutations,
                 scheme=template.scheme)
    mh.update_batch(list(grams))
    return tuple(int(v) for v in mh.hashvalues)


@functools.cache
def _template() -> MinHash:
    """The seeded permutations, drawn once: drawing them again for every article cost as much
    as hashing its shingles (they depend only on NUM_PERM and the seed)."""
    return MinHash(num_perm=NUM_PERM, seed=_SEED)


def band_keys(sig: Sequence[int]) -> list[str]:
    """The LSH band keys of a signature (a copy of a cached list: one article's bands are
    looked up, indexed and searched several times in a batch)."""
    return list(_band_keys(tuple(sig)))


@functools.lru_cache(maxsize=8192)
def _band_keys(sig: tuple[int, ...]) -> tuple[str, ...]:
    if not sig:
        return ()
    return tuple(
        f"{b}:{content_id(*(str(v) for v in sig[b * ROWS : (b + 1) * ROWS]), length=12)}"
        for b in range(BANDS)
    )


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    if not a or not b or len(a) != len(b):
        return 0.0
    return float(np.mean(np.asarray(a) == np.asarray(b)))


@dataclass(frozen=True)
class Fingerprint:
    doc_id: str
    story_id: str
    text_hash: str
    signature: tuple[int, ...]
    first_seen: str  # ISO time; ties in story choice are broken by it, then by doc_id
    #: What the article says (story/); None for documents stored before it existed,
    #: which are then matched on their MinHash alone.
    features: StoryFeatures | None = None

    @functools.cached_property
    def signature_array(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The signature as an array, made once per fingerprint: a batch compares every
        article with the same stored candidates."""
        return np.asarray(self.signature, dtype=np.int64)

    @functools.cached_property
    def _story_keys(self) -> tuple[str, ...]:
        # Made once per fingerprint: a batch asks for them five times (look-up, both indexes'
        # candidates, filing, the stored document), and each time cost a blocking_keys() run.
        return tuple(blocking_keys(self.features)) if self.features is not None else ()

    def __getstate__(self) -> dict[str, Any]:
        # The cached values are not pickled: runners pickle fingerprints between stages.
        return {k: v for k, v in self.__dict__.items() if k not in _CACHED}

    @property
    def bands(self) -> list[str]:
        return band_keys(self.signature)

    @property
    def story_keys(self) -> list[str]:
        """Blocking keys of the story features (stored, and searched, beside the bands)."""
        return list(self._story_keys)


#: Fingerprint's cached properties, left out of its pickled state.
_CACHED = frozenset({"signature_array", "_story_keys"})


@dataclass(frozen=True)
class StoryDecision:
    story_id: str
    #: Set when the article is an exact copy of another document (same text).
    duplicate_of: str | None = None
    similarity: float = 0.0
    #: The story score of the chosen candidate when the facts, not the words, matched.
    match_score: float | None = None


def decide_story(new: Fingerprint, candidates: Iterable[Fingerprint]) -> StoryDecision:
    """The story a new article belongs to, among candidate earlier articles.

    An exact copy wins; then the earliest candidate whose MinHash signature is near enough;
    then, when no signature is, the candidate whose story features score highest at or above
    ``story.SAME_STORY_THRESHOLD`` (ties to the earliest). The result does not depend
    on the order in which candidates were found; an article with no match starts its own story.
    """
    others = [c for c in candidates if c.doc_id != new.doc_id]
    for cand in others:
        if cand.text_hash == new.text_hash:
            return StoryDecision(cand.story_id, duplicate_of=cand.doc_id, similarity=1.0)
    comparable = [c for c in others if len(c.signature) == len(new.signature) and new.signature]
    if not comparable:
        return _decide_on_facts(new, others)
    # One vectorized comparison for all candidates: a popular story can have hundreds.
    sims = (np.stack([c.signature_array for c in comparable]) == new.signature_array).mean(
        axis=1
    )
    matches = [(c, float(sim)) for c, sim in zip(comparable, sims, strict=True)
               if sim >= NEAR_DUPLICATE_THRESHOLD]
    if not matches:
        return _decide_on_facts(new, others)
    best, sim = min(matches, key=lambda m: (m[0].first_seen, m[0].doc_id))
    return StoryDecision(best.story_id, similarity=sim)


def _decide_on_facts(new: Fingerprint, others: Sequence[Fingerprint]) -> StoryDecision:
    if new.features is None:
        return StoryDecision(new.story_id)
    scored = [
        (score(new.features, c.features), c) for c in others
        if c.features is not None
        and may_reach(new.features, c.features, SAME_STORY_THRESHOLD)
    ]
    matches = [(value, c) for value, c in scored if value >= SAME_STORY_THRESHOLD]
    if not matches:
        return StoryDecision(new.story_id)
    value, best = min(matches, key=lambda m: (-m[0], m[1].first_seen, m[1].doc_id))
    return StoryDecision(best.story_id, match_score=round(value, 3))


#: How far behind the newest article time a StoryIndex keeps fingerprints by default. The
#: in-run index only bridges the time until a written article is searchable in the store
#: (StoreArticles writes each batch right after grouping it; the store refreshes within
#: seconds), which earlier articles of the run then find by the store look-up; copies and
#: rewrites arrive within hours to days. Two days of article time is a wide margin for that,
#: and bounds a worker's memory by the articles of two days however long the run.
INDEX_HORIZON = timedelta(days=2)
#: How many of the candidates that share only story keys with an article (no text hash, no
#: band) a StoryIndex offers for scoring on facts: the ones sharing the rarest keys. Common
#: keys (a leader, a weapon, a figure in a week) file a large share of a run's articles under
#: one key, and scoring every one of them cost most of the pipeline's CPU, growing with the
#: run; the article's own event shares its rare facts. Copies and near-duplicates (text hash,
#: band) are never cut.
FACTS_CANDIDATES = 30
#: A story key filed under more entries than this is a stop-key: so common that it says little
#: (a leader's name in a busy week). Ranking reads only its ``STOP_KEY_NEWEST`` newest entries,
#: the ones nearest in time, so the cost per article stays flat however long the run.
KEY_POSTINGS = 100
STOP_KEY_NEWEST = 10


@dataclass
class StoryIndex:
    """In-memory index of the fingerprints seen in this run (LSH bands and story blocking
    keys), so copies and translations that arrive in the same batch find each other before
    either is searchable in the store.

    Bounded by time: a fingerprint whose article time (``first_seen``) falls more than
    ``horizon`` behind the newest one added is dropped, so memory stays flat in a long batch
    or stream; None keeps everything. Candidates come in the order they were added.
    """

    horizon: timedelta | None = INDEX_HORIZON
    #: How many candidates found by story keys alone ``candidates`` offers (None: all).
    facts_limit: int | None = FACTS_CANDIDATES
    #: Past how many entries a story key is a stop-key (``KEY_POSTINGS``).
    key_postings: int = KEY_POSTINGS
    #: key -> entry numbers, in the order added (numbers, not fingerprints or doc_ids: an
    #: entry is dropped from every list it is in, and the same document added twice is held
    #: twice). Lists, not dicts: most keys (bands) hold one entry, and a dict costs 4 times
    #: the memory of a one-item list.
    by_band: dict[str, list[int]] = field(default_factory=dict)
    by_hash: dict[str, list[int]] = field(default_factory=dict)
    _entries: dict[int, tuple[Fingerprint, tuple[str, ...]]] = field(default_factory=dict)
    _added: int = 0
    _by_time: list[tuple[datetime, int]] = field(default_factory=list)
    _newest: datetime | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, fp: Fingerprint, keys: Iterable[str] | None = None) -> None:
        """File ``fp`` under its bands and story keys (or the ``keys`` given: what a stored
        document was found under), then drop what fell behind the horizon."""
        entry, self._added = self._added, self._added + 1
        filed = (tuple(keys) if keys is not None
                 else (*_band_keys(tuple(fp.signature)), *fp._story_keys))
        self._entries[entry] = (fp, filed)
        self.by_hash.setdefault(fp.text_hash, []).append(entry)
        for key in filed:
            self.by_band.setdefault(key, []).append(entry)
        if self.horizon is None:
            return
        seen = _time(fp.first_seen)
        if seen is None:
            return
        heapq.heappush(self._by_time, (seen, entry))
        if self._newest is None or seen > self._newest:
            self._newest = seen
        limit = self._newest - self.horizon
        while self._by_time and self._by_time[0][0] < limit:
            self._drop(heapq.heappop(self._by_time)[1])

    def _drop(self, entry: int) -> None:
        fp, filed = self._entries.pop(entry)
        for table, key in (*((self.by_band, k) for k in filed), (self.by_hash, fp.text_hash)):
            held = table[key]
            # Entries are dropped about in the order they were added: usually the first.
            if held[0] == entry:
                del held[0]
            else:
                held.remove(entry)
            if not held:
                del table[key]

    def candidates(self, fp: Fingerprint) -> list[Fingerprint]:
        """The fingerprints ``decide_story`` should compare ``fp`` with, in the order added.

        Every one that shares its text hash (the first such) or an LSH band: copies and
        near-duplicates are always found. Of those that share story keys only, the
        ``facts_limit`` that share the most rarity-weighted keys (``key_weight``; ties to the
        newest), or all of them when ``facts_limit`` is None. Of a stop-key (filed under more
        than ``key_postings`` entries) only the ``STOP_KEY_NEWEST`` newest entries are read,
        so the cost per article does not grow with the run however common a key becomes.
        """
        entries = self._entries
        chosen: set[int] = set()
        same = self.by_hash.get(fp.text_hash)
        if same:
            chosen.add(same[0])
        by_key = self.by_band
        for key in _band_keys(tuple(fp.signature)):
            chosen.update(by_key.get(key, ()))
        # The story keys' postings (a stop-key's newest only), each with its key's weight,
        # in key order: summed per entry below in that order, as a loop over them would.
        read: list[int] = []
        weight_of: list[float] = []
        counts: list[int] = []
        held = len(entries)
        for key in fp._story_keys:
            posted = by_key.get(key)
            if not posted:
                continue
            weight_of.append(key_weight(len(posted), held))
            if len(posted) > self.key_postings:
                posted = posted[-STOP_KEY_NEWEST:]
            read.extend(posted)
            counts.append(len(posted))
        if read:
            # ~1,300 postings an article in the bench's run: summed in numpy, a third of the
            # time of a dict loop. bincount adds each entry's weights in input order, so the
            # sums are bit for bit the loop's.
            shared, where = np.unique(np.asarray(read, dtype=np.int64), return_inverse=True)
            sums = np.bincount(where, weights=np.repeat(weight_of, counts))
            if self.facts_limit is not None and len(shared) > self.facts_limit:
                # The facts_limit largest (weight, entry) pairs: ties to the newest entry.
                ranked = np.lexsort((shared, sums))[-self.facts_limit:]
                chosen.update(shared[ranked].tolist())
            else:
                chosen.update(shared.tolist())
        found: dict[str, Fingerprint] = {}
        for entry in sorted(chosen):
            cand = entries[entry][0]
            found.setdefault(cand.doc_id, cand)
        return list(found.values())


def key_weight(postings: int, held: int) -> float:
    """How much sharing one story key says, by its rarity among the ``held`` fingerprints of
    an index: the inverse document frequency ``log(1 + held / postings)``, as entity
    resolution weighs blocking keys. A figure or a name a few articles give counts several
    times a leader's name that half the week's articles give."""
    return math.log1p(held / postings)


def _time(iso: str) -> datetime | None:
    try:
        seen = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return seen if seen.tzinfo is not None else seen.replace(tzinfo=UTC)
