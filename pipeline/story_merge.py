"""Merging stories after the fact: what M pipeline workers that group without talking to each
other must do so that the same data makes the same stories whatever M.

Each worker groups with its own in-run index (stories.StoryIndex), so two copies of one story
read by two workers before either is searchable both start a story of their own. Once a batch
is written and the store refreshed, the story a copy started can be compared with the stories
other workers started: a story's founder is the document it is named after
(``story_id == doc_id``: normalize gives every article its own id as its story).

The rule every worker applies, with nothing but the store to go by:

- Two founders are one story when ``stories.decide_story`` would have joined one to the
  other had it seen it (an exact copy, a near-duplicate signature or a facts match).
- The winner of a set of such founders is the one first seen (``first_seen``, then
  ``doc_id``): the story one worker would have named, had it read the copies in time order.
  Every worker that sees the same founders picks the same winner.
- A founder document that belongs to another story records the merge: a story whose founder
  moved was merged into the founder's new story (``redirects``), so a copy another worker
  still filed under the old id follows.

- A founder also joins the story of any document another worker wrote before it (first
  seen earlier) that grouping would have put it with (``would_join``): the split the founders
  alone miss, where the two stories' first copies do not match each other but a later copy of
  one matches the other's founder (similarity is not transitive). Asked by whichever worker
  merges second: the founder's worker re-decides its founder against what the other workers
  wrote, the other one re-decides the other workers' founders near its batch against its
  batch. The two stories join (``plan_merges``'s ``joins``), named after the earlier founder.

On one worker this changes nothing: a founder that could join an earlier founder would have
found it in the store or the in-run index, and a later one would have joined it, so no two
founders ever match; and no document was written by another worker. Pure logic: the store
calls are in stages/merge.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from newsmon.models import Alert
from newsmon.pipeline.stories import Fingerprint, decide_story

JsonDict = dict[str, Any]

#: How many founder documents a redirect is followed through (a merge of a merge...): a chain
#: longer than this is left for a later batch rather than followed without bound.
MAX_REDIRECTS = 8


def is_founder(fp: Fingerprint) -> bool:
    """Whether ``fp``'s document is the first of its story (the story is named after it)."""
    return fp.story_id == fp.doc_id


def _order(fp: Fingerprint) -> tuple[str, str]:
    return (fp.first_seen, fp.doc_id)


def would_join(founder: Fingerprint, others: Iterable[Fingerprint]) -> str | None:
    """The story ``founder`` would have joined had its grouping seen ``others`` (documents
    another worker wrote), or None. Only those first seen before it count (on one worker
    reading in time order it could have seen no other), and none of its own story."""
    earlier = [o for o in others
               if _order(o) < _order(founder) and o.story_id != founder.story_id]
    if not earlier:
        return None
    story = decide_story(founder, earlier).story_id
    return None if story == founder.story_id else story


def plan_merges(
    founders: Iterable[Fingerprint],
    candidates: Callable[[Fingerprint], Iterable[Fingerprint]],
    joins: Iterable[tuple[str, str]] = (),
    known: Mapping[str, Fingerprint] | None = None,
) -> dict[str, str]:
    """loser story id -> winner story id, for the stories the ``founders`` started and the
    pairs of stories ``joins`` names (``would_join``'s findings).

    ``candidates(fp)`` are the stored documents that share a text hash, a band or a story key
    with ``fp`` (the same look-up grouping makes). Of those, only other founders count; each
    one ``decide_story`` would have joined ``fp`` to is the same story. The winner of each set
    is the earliest founder (``known``: founder doc_id -> its fingerprint, for the stories of
    ``joins``; a story whose founder is not known sorts by its id, after every known one);
    every other story maps to it (the winner never maps).
    """
    parent: dict[str, str] = {}
    order: dict[str, tuple[str, str]] = {}
    known = known or {}

    def root(story: str) -> str:
        while parent.get(story, story) != story:
            story = parent[story]
        return story

    def union(a: Fingerprint, b: Fingerprint) -> None:
        order.setdefault(a.story_id, _order(a))
        order.setdefault(b.story_id, _order(b))
        ra, rb = root(a.story_id), root(b.story_id)
        if ra == rb:
            return
        first, second = sorted((ra, rb), key=lambda s: order[s])
        parent[second] = first
        parent.setdefault(first, first)

    for fp in founders:
        if not is_founder(fp):
            continue
        for cand in candidates(fp):
            if cand.doc_id == fp.doc_id or not is_founder(cand):
                continue
            # Would grouping have joined the two, had it seen the other in time? Asked both
            # ways: whichever came first, the later one would have been compared with it.
            if (decide_story(fp, [cand]).story_id == cand.story_id
                    or decide_story(cand, [fp]).story_id == fp.story_id):
                union(fp, cand)
    for a, b in joins:
        union(*(known.get(s) or Fingerprint(s, s, "", (), "\uffff") for s in (a, b)))
    return {story: root(story) for story in parent if root(story) != story}


def redirects(stories: Iterable[str], founder_stories: Mapping[str, str]) -> dict[str, str]:
    """story id -> the story it was merged into, for the ``stories`` whose founder document
    now belongs to another story (``founder_stories``: founder doc_id -> its stored story_id;
    a story whose founder is not stored, or not yet searchable, stays as it is)."""
    out = {}
    for story in stories:
        target, hops = story, 0
        while hops < MAX_REDIRECTS:
            nxt = founder_stories.get(target, target)
            if nxt == target:
                break
            target, hops = nxt, hops + 1
        if target != story:
            out[story] = target
    return out


def relabelled(doc: JsonDict, merges: Mapping[str, str]) -> JsonDict | None:
    """The stored article document in the story its story was merged into, or None when its
    story was not merged."""
    winner = merges.get(str(doc.get("story_id")))
    if winner is None:
        return None
    return {**doc, "story_id": winner}


def moved_alert(doc: JsonDict, winner: str) -> tuple[str, JsonDict]:
    """(id, document) of a story alert moved to the ``winner`` story: the same alert (its
    copies, sources, delivery state: nothing is sent again for it) under the id the winner's
    copies look it up by."""
    alert_id = Alert.id_for(str(doc["rule"]), winner)
    return alert_id, {**doc, "alert_id": alert_id, "story_id": winner}


def alert_moves(rules: Sequence[str], merges: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(loser alert id, winner alert id, winner story) for every rule and merged story."""
    return [(Alert.id_for(rule, loser), Alert.id_for(rule, winner), winner)
            for loser, winner in sorted(merges.items()) for rule in rules]
