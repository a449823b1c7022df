"""The stage that merges the stories M workers split (the rule: story_merge.py)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from newsmon.pipeline import story_merge
from newsmon.pipeline.stages.base import StoreFn
from newsmon.pipeline.stages.store import (
    KEY_FIELDS,
    LOOKUP_FIELDS,
    Placed,
    fingerprint_of_doc,
    near_docs,
    stored_index,
)
from newsmon.pipeline.store.base import DocumentStore
from newsmon.pipeline.stories import INDEX_HORIZON, Fingerprint, StoryIndex


class MergeStoriesFn(StoreFn):
    """Written batch of Placed -> the same batch, each article in its story after merging.

    After a refresh (the other workers' acknowledged writes become searchable), every story
    this batch started is compared with the stories other workers started
    (``story_merge.plan_merges``), each founder of the batch with the earlier documents other
    workers wrote, and each other worker's founder near the batch with the batch's earlier
    documents (``story_merge.would_join``; "other": not among the doc_ids this worker wrote
    within ``stories.INDEX_HORIZON``, which it keeps); a story whose founder was merged into
    another follows it (``story_merge.redirects``). A merged story's alerts move to the
    winner's id when the winner has none yet, its stored documents are re-labelled (the
    founder last: its label is what records the merge, so a run that fails half-way finds
    the merge again), and the batch goes on re-labelled, so its alerts go to the winner's
    alert. Every write is a
    create-if-absent, a delete or an idempotent re-write: a re-run repeats them harmlessly.
    An unreachable store, or a re-write it refuses, raises (the run fails and is re-run).
    On one worker whose grouping saw every earlier copy nothing merges. The cost per batch:
    a refresh, three key look-ups of at most ``LOOKUP_SIZE`` documents each (story ids and
    keys only), one read of the whole fingerprints of the other workers' documents among them
    (none on one worker) and one of the founders of the stories involved; ``decide_story``
    for each founder of the batch and each other worker's founder found.
    """

    def setup(self) -> None:
        super().setup()
        self.own = OwnDocuments()

    def process(self, batch: Sequence[Placed]) -> Iterator[list[Placed]]:
        db = self.db()
        if not batch:
            yield list(batch)
            return
        self.own.add([p.fingerprint for p in batch])
        db.refresh("articles")
        fps = [p.fingerprint for p in batch]
        founders = [fp for fp in fps if story_merge.is_founder(fp)]
        near = near_docs(db, fps, KEY_FIELDS)
        # Only which stories the candidates are in: no signature, no features decoded.
        stored = stored_index(near, {k for fp in fps for k in (*fp.bands, *fp.story_keys)},
                              features=False)
        # A founder against what the other workers wrote before it; the other workers'
        # founders near this batch against this batch's earlier documents. Whichever of the two
        # workers merges second sees both sides (each wrote before it refreshed). Only those
        # documents are read whole: on one worker, none.
        asked = {fp.doc_id: [c.doc_id for c in stored.candidates(fp)
                             if c.doc_id not in self.own and c.story_id != fp.story_id
                             and (c.first_seen, c.doc_id) < (fp.first_seen, fp.doc_id)]
                 for fp in founders}
        strangers = [d["doc_id"] for d in near
                     if d["doc_id"] == d["story_id"] and d["doc_id"] not in self.own]
        whole = _whole_docs(db, sorted({*strangers, *(i for ids in asked.values() for i in ids)}))
        joins = []
        for fp in founders:
            story = story_merge.would_join(fp, [whole[i] for i in asked[fp.doc_id] if i in whole])
            if story is not None:
                joins.append((fp.story_id, story))
        batch_index = StoryIndex(horizon=None)
        for fp in fps:
            batch_index.add(fp)
        for doc_id in dict.fromkeys(strangers):
            other = whole.get(doc_id)
            if other is None or not story_merge.is_founder(other):
                continue
            story = story_merge.would_join(other, batch_index.candidates(other))
            if story is not None:
                joins.append((other.story_id, story))

        candidate_stories = {c.story_id for f in founders for c in stored.candidates(f)}
        batch_stories = {p.article.story_id for p in batch}
        joined = {s for pair in joins for s in pair}
        found = _founder_docs(db, sorted(candidate_stories | batch_stories | joined))
        founder_docs = {fp.doc_id: fp for fp, _ in found}
        # The founders filed under their own keys: a founder is compared with another only if
        # grouping would have found one from the other (a shared hash, band or story key),
        # so that on one worker, where grouping saw every earlier founder, nothing merges.
        founders_index = StoryIndex(horizon=None)
        for fp, keys in found:
            if story_merge.is_founder(fp):
                founders_index.add(fp, keys=keys)

        merges = story_merge.plan_merges(founders, founders_index.candidates, joins,
                                         founder_docs)
        moved = {doc_id: fp.story_id for doc_id, fp in founder_docs.items()}
        final = story_merge.redirects(batch_stories | merges.keys(), {**moved, **merges})
        if final:
            self._move_alerts(db, final)
            _relabel_stored(db, final)
        yield [_relabel(p, final.get(p.article.story_id)) for p in batch]

    def _move_alerts(self, db: DocumentStore, merges: dict[str, str]) -> None:
        """Each alert of a merged story moves to the winner's id when the winner has none (one
        story, one alert); when both have one, both stay (both were sent already)."""
        rules = sorted({rule.name for rule in self.ctx.alerts.rules})
        for loser_id, winner_id, winner in story_merge.alert_moves(rules, merges):
            current = db.get("alerts", loser_id)
            if current is None:
                continue
            new_id, doc = story_merge.moved_alert(current.source, winner)
            assert new_id == winner_id
            if db.get("alerts", winner_id) is None:
                db.create("alerts", winner_id, doc)
                db.delete("alerts", loser_id)


def _whole_docs(db: DocumentStore, doc_ids: Sequence[str]) -> dict[str, Fingerprint]:
    """doc_id -> the fingerprint grouping compares (signature, features) of ``doc_ids``."""
    if not doc_ids:
        return {}
    return {d["doc_id"]: fingerprint_of_doc(d) for d in db.find_terms(
        "articles", "doc_id", list(doc_ids), size=len(doc_ids), fields=LOOKUP_FIELDS)}


class OwnDocuments:
    """The doc_ids this worker wrote over the last ``stories.INDEX_HORIZON`` of article time
    (what its grouping's in-run index held): every other stored document was written by
    another worker or an earlier run. Bounded like that index, by batch."""

    def __init__(self) -> None:
        self._batches: deque[tuple[str, frozenset[str]]] = deque()
        self._ids: dict[str, int] = {}

    def add(self, fps: Sequence[Fingerprint]) -> None:
        ids = frozenset(fp.doc_id for fp in fps)
        self._batches.append((max(fp.first_seen for fp in fps), ids))
        for doc_id in ids:
            self._ids[doc_id] = self._ids.get(doc_id, 0) + 1
        newest = max(seen for seen, _ in self._batches)
        limit = _shift(newest, -INDEX_HORIZON)
        while limit is not None and self._batches and self._batches[0][0] < limit:
            for doc_id in self._batches.popleft()[1]:
                self._ids[doc_id] -= 1
                if not self._ids[doc_id]:
                    del self._ids[doc_id]

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ids


def _shift(iso: str, by: timedelta) -> str | None:
    try:
        return (datetime.fromisoformat(iso) + by).isoformat()
    except ValueError:
        return None


def _founder_docs(db: DocumentStore,
                  stories: Sequence[str]) -> list[tuple[Fingerprint, list[str]]]:
    """The stored founder documents of ``stories`` (a story is named after its founder), each
    with the keys it is filed under (bands, story keys)."""
    return [(fingerprint_of_doc(d), [*(d.get("lsh_bands") or ()), *(d.get("story_keys") or ())])
            for d in db.find_terms("articles", "doc_id", list(stories),
                                   size=max(1, len(stories)), fields=LOOKUP_FIELDS)]


def _relabel_stored(db: DocumentStore, merges: dict[str, str]) -> None:
    docs: list[tuple[str, dict[str, Any]]] = []
    for doc in db.scan("articles", terms={"story_id": sorted(merges)}):
        moved = story_merge.relabelled(doc, merges)
        if moved is not None:
            docs.append((str(doc["doc_id"]), moved))
    # Founders last: a founder's label records its story's merge.
    rest = [d for d in docs if d[0] not in merges]
    founders = [d for d in docs if d[0] in merges]
    for part in (rest, founders):
        failures = db.bulk_write("articles", part)
        if failures:
            raise RuntimeError(f"re-labelling {len(failures)} documents of merged stories "
                               f"failed (first: {failures[0].doc_id}, HTTP "
                               f"{failures[0].status}); the run is repeated")


def _relabel(placed: Placed, story: str | None) -> Placed:
    if story is None:
        return placed
    return replace(placed, article=placed.article.model_copy(update={"story_id": story}),
                   fingerprint=replace(placed.fingerprint, story_id=story))
