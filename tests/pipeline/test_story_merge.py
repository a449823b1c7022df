"""Stories split by workers that grouped without seeing each other are merged after the fact
(pipeline/story_merge.py, stages/merge.py): the rule, then the stage on the embedded store and
on the real search server, including an alert raised under the losing story."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from newsmon.models import Alert
from newsmon.pipeline import stories as dedup
from newsmon.pipeline import story_merge
from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig
from newsmon.pipeline.normalize import normalize_item
from newsmon.pipeline.stages.alerts import EvaluateAlertsFn
from newsmon.pipeline.stages.base import RunContext
from newsmon.pipeline.stages.items import ClassifyTopicsFn
from newsmon.pipeline.stages.merge import MergeStoriesFn, OwnDocuments
from newsmon.pipeline.stages.store import GroupStoriesFn, Placed, WriteDocumentsFn
from tests.pipeline.samples import OTHER, REWRITE, TROOPS, WIRE, sample_item, store_context

ROOT = Path(__file__).resolve().parents[2]


def fp(doc_id: str, text: str, first_seen: str, story: str | None = None) -> dedup.Fingerprint:
    return dedup.Fingerprint(doc_id, story or doc_id, text.lower(), dedup.signature(text),
                             first_seen)


def test_the_earliest_founder_wins_whichever_worker_asks() -> None:
    a, b = fp("a", WIRE, "2026-01-01T00:05"), fp("b", REWRITE, "2026-01-01T00:01")
    other = fp("c", OTHER, "2026-01-01T00:00")
    for asking, stored in ((a, [b, other]), (b, [a, other])):
        assert story_merge.plan_merges([asking], lambda _, s=stored: s) == {"a": "b"}


def test_three_founders_of_one_story_all_go_to_the_first() -> None:
    founders = [fp(d, WIRE + f" Update {n}.", f"2026-01-01T00:0{n}")
                for n, d in enumerate(("x", "y", "z"))]
    plan = story_merge.plan_merges(founders[2:], lambda _: founders[:2])
    assert plan == {"y": "x", "z": "x"}


def test_only_founders_merge() -> None:
    """A document that joined a story is not a story of its own: on one worker a founder can
    match a later member of another story (similarity is not transitive) and grouping left the
    two apart; merging them would change what one worker groups."""
    founder = fp("a", WIRE, "2026-01-01T00:05")
    member = fp("m", REWRITE, "2026-01-01T00:01", story="s")
    assert story_merge.plan_merges([founder], lambda _: [member]) == {}
    assert story_merge.plan_merges([fp("m", REWRITE, "t", story="s")],
                                   lambda _: [founder]) == {}


def test_a_founder_would_join_only_an_earlier_document_of_another_story() -> None:
    founder = fp("f", WIRE, "2026-01-01T00:05")
    member = fp("m", REWRITE, "2026-01-01T00:01", story="s")
    assert story_merge.would_join(founder, [member]) == "s"
    # Later than the founder: on one worker reading in time order the founder came first.
    assert story_merge.would_join(founder, [fp("m", REWRITE, "2026-01-01T00:09", "s")]) is None
    # Its own story, or an unrelated text: nothing to join.
    assert story_merge.would_join(founder, [fp("m", REWRITE, "2026-01-01T00:01", "f")]) is None
    assert story_merge.would_join(founder, [fp("o", OTHER, "2026-01-01T00:01")]) is None


def test_joined_stories_are_named_after_the_earlier_founder() -> None:
    early, late = fp("e", OTHER, "2026-01-01T00:01"), fp("l", TROOPS, "2026-01-01T00:09")
    known = {"e": early, "l": late}
    for pair in (("l", "e"), ("e", "l")):
        assert story_merge.plan_merges([], lambda _: [], [pair], known) == {"l": "e"}
    # A story whose founder is not known sorts after the known ones.
    assert story_merge.plan_merges([], lambda _: [], [("e", "x")], known) == {"x": "e"}


def test_a_worker_remembers_its_own_documents_for_the_index_horizon_only() -> None:
    own = OwnDocuments()
    own.add([fp("old", OTHER, "2026-01-01T00:00:00+00:00")])
    own.add([fp("new", OTHER, "2026-01-02T12:00:00+00:00")])
    assert "old" in own and "new" in own and "other" not in own
    own.add([fp("newer", OTHER, "2026-01-03T00:00:01+00:00")])  # two days on: "old" goes
    assert "old" not in own and "new" in own and "newer" in own


def test_a_moved_founder_redirects_its_story_through_a_chain() -> None:
    moved = {"a": "b", "b": "c", "d": "d"}
    assert story_merge.redirects(["a", "b", "d", "e"], moved) == {"a": "c", "b": "c"}
    loop = {"a": "b", "b": "a"}  # never written so, but never followed without bound
    assert story_merge.redirects(["a"], loop) in ({}, {"a": "b"})


def test_a_moved_alert_keeps_its_state_under_the_winners_id() -> None:
    doc = {"alert_id": Alert.id_for("r", "lose"), "rule": "r", "story_id": "lose",
           "notified": ["console"], "doc_ids": ["d1"]}
    new_id, moved = story_merge.moved_alert(doc, "win")
    assert new_id == Alert.id_for("r", "win") == moved["alert_id"]
    assert moved["story_id"] == "win"
    assert moved["notified"] == ["console"] and moved["doc_ids"] == ["d1"]


@pytest.fixture(params=["embedded", "elasticsearch"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunContext]:
    alerts = AlertsConfig(channels={"console": ConsoleChannel()},
                          rules=(AlertRule(name="lrs", topic="long_range_strike"),))
    with store_context(request.param, tmp_path, prefix="mergetest", alerts=alerts) as context:
        yield context


class Worker:
    """One pipeline worker's store stages, with its own in-run story index."""

    def __init__(self, ctx: RunContext) -> None:
        self.fns = (GroupStoriesFn(ctx), WriteDocumentsFn(ctx), MergeStoriesFn(ctx),
                    EvaluateAlertsFn(ctx))
        for fn in self.fns:
            fn.setup()
        self.classify = ClassifyTopicsFn(ctx.settings.topics)
        self.classify.setup()

    def group(self, guids: dict[str, tuple[str, str, int]]) -> list[Placed]:
        batch = [self.classify.transform(
            normalize_item(sample_item(src, guid, "", text, minutes=minutes)))
            for guid, (src, text, minutes) in guids.items()]
        (placed,) = list(self.fns[0].process(batch))
        return placed

    def write_merge_alert(self, placed: Sequence[Placed]) -> list[Placed]:
        written = [out for out in self.fns[1].process(placed) if isinstance(out, list)]
        (merged,) = list(self.fns[2].process(written[0]))
        list(self.fns[3].process(merged))
        return merged

    def close(self) -> None:
        for fn in self.fns:
            fn.teardown()


def test_two_workers_that_split_a_story_end_with_one_story_and_one_alert(
        ctx: RunContext) -> None:
    a, b = Worker(ctx), Worker(ctx)
    try:
        # Both group before either wrote: each starts a story of its own (the split).
        first = a.group({"wire": ("wire-a", WIRE, 0), "troops": ("wire-a", TROOPS, 1)})
        second = b.group({"rewrite": ("paper-b", REWRITE, 5), "other": ("paper-b", OTHER, 6)})
        wire, rewrite = first[0].article, second[0].article
        assert wire.story_id == wire.doc_id and rewrite.story_id == rewrite.doc_id
        # B writes, finds nothing to merge yet (A's copy is not written) and alerts under its
        # own story; then A writes, finds B's founder and wins (first seen).
        b_out = b.write_merge_alert(second)
        assert b_out[0].article.story_id == rewrite.doc_id
        a_out = a.write_merge_alert(first)
        assert a_out[0].article.story_id == wire.doc_id
        store = a.fns[2].db()
        store.refresh("articles")
        stories = {d["doc_id"]: d["story_id"] for d in store.scan("articles")}
        assert stories[rewrite.doc_id] == wire.doc_id
        # Unrelated stories are left alone.
        assert stories[second[1].article.doc_id] == second[1].article.doc_id
        assert stories[first[1].article.doc_id] == first[1].article.doc_id
        # B's alert moved to the winner's id and A's copy merged into it: one alert.
        assert store.get("alerts", Alert.id_for("lrs", rewrite.doc_id)) is None
        alert = store.get("alerts", Alert.id_for("lrs", wire.doc_id))
        assert alert is not None
        assert sorted(alert.source["doc_ids"]) == sorted([wire.doc_id, rewrite.doc_id])
        assert alert.source["story_id"] == wire.doc_id
        # B's next copy, still filed under its old story by B's in-run index, follows the
        # founder's merge.
        later = b.group({"copy": ("paper-c", REWRITE, 9)})
        assert later[0].article.story_id == wire.doc_id or (
            b.write_merge_alert(later)[0].article.story_id == wire.doc_id)
    finally:
        a.close()
        b.close()


def test_one_worker_merges_nothing(ctx: RunContext) -> None:
    """The same articles through one worker: the stage changes no story."""
    w = Worker(ctx)
    try:
        placed = w.group({"wire": ("wire-a", WIRE, 0), "rewrite": ("paper-b", REWRITE, 5),
                          "other": ("paper-b", OTHER, 6)})
        before = [p.article.story_id for p in placed]
        after = [p.article.story_id for p in w.write_merge_alert(placed)]
        assert before == after
        assert before[0] == before[1] != before[2]
    finally:
        w.close()


#: Eight sentences each; the middle text shares six with the first and four with the last,
#: which share two: near-duplicates x~y and y~z (each pair shares LSH bands, so each finds the
#: other), but not x~z (MinHash 0.20, no band).
_WORDS = ("alpha red slowly", "bravo blue quickly", "charlie green neatly",
          "delta yellow roughly", "echo orange boldly", "foxtrot purple calmly",
          "golf brown gladly", "hotel black loudly", "india white softly", "juliet grey warmly",
          "kilo pink dimly", "lima cyan firmly", "mike olive gently", "november navy keenly")
_SENTENCES = [f"Sentence {w} about the harbour crane number {n} and its {v} painted {c} hull."
              for n, (w, v, c) in enumerate(words.split() for words in _WORDS)]
BRIDGE_FIRST, BRIDGE_MIDDLE, BRIDGE_LAST = (" ".join(_SENTENCES[n:n + 8]) for n in (0, 2, 6))


def test_the_bridge_texts_chain_but_their_ends_do_not_match() -> None:
    # As the pipeline fingerprints them: an empty title, then the text.
    sig = {n: dedup.signature(f"\n{t}") for n, t in (("x", BRIDGE_FIRST), ("y", BRIDGE_MIDDLE),
                                                     ("z", BRIDGE_LAST))}
    bands = {n: set(dedup.band_keys(s)) for n, s in sig.items()}
    for near in ("xy", "yz"):
        assert dedup.similarity(sig[near[0]], sig[near[1]]) >= dedup.NEAR_DUPLICATE_THRESHOLD
        assert bands[near[0]] & bands[near[1]]
    assert dedup.similarity(sig["x"], sig["z"]) < dedup.NEAR_DUPLICATE_THRESHOLD
    assert not bands["x"] & bands["z"]


@pytest.mark.parametrize("first_to_merge", ["founder's worker", "member's worker"])
def test_a_founder_that_would_have_joined_another_workers_member_is_merged(
        ctx: RunContext, first_to_merge: str) -> None:
    """The split the bench found (docs/scaling.md): worker A files x and y (y joins x's
    story), worker B, before either is searchable, starts a story with z, which matches y
    but not x. One worker would have put z in x's story through y; the founders x and z do
    not match each other, so comparing founders alone never merged them. Whichever worker
    merges second finds the pair: B re-decides its founder z against the documents other
    workers wrote before z, or A re-decides the other workers' founders its batch is near
    (z) against its own batch's earlier documents (y)."""
    a, b = Worker(ctx), Worker(ctx)
    try:
        first = a.group({"x": ("wire-a", BRIDGE_FIRST, 0), "y": ("wire-a", BRIDGE_MIDDLE, 1)})
        second = b.group({"z": ("paper-b", BRIDGE_LAST, 2)})
        x, y, z = first[0].article, first[1].article, second[0].article
        assert y.story_id == x.doc_id and z.story_id == z.doc_id  # the split
        workers = [(a, first), (b, second)]
        if first_to_merge == "member's worker":
            workers.reverse()
        for worker, placed in workers:
            worker.write_merge_alert(placed)
        store = a.fns[2].db()
        store.refresh("articles")
        stories = {d["doc_id"]: d["story_id"] for d in store.scan("articles")}
        assert stories == {x.doc_id: x.doc_id, y.doc_id: x.doc_id, z.doc_id: x.doc_id}
    finally:
        a.close()
        b.close()
