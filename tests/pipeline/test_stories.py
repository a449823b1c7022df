import random
from datetime import UTC, datetime, timedelta

from newsmon.pipeline import stories as dedup
from newsmon.pipeline.stages.store import stored_index
from newsmon.pipeline.story import StoryFeatures

WIRE = ("Ukrainian forces struck a military airfield in Russia's Kursk region with US-made "
        "ATACMS missiles overnight, officials in Kyiv said, days after the White House allowed "
        "the long-range weapons to be used against targets on Russian territory. Moscow said air "
        "defences shot down most of the missiles and warned of a response.")
REWRITE = ("Officials in Kyiv said Ukrainian forces struck a military airfield in Russia's Kursk "
           "region overnight with US-made ATACMS missiles, days after the White House allowed the "
           "long-range weapons to be used against targets on Russian territory. Moscow claimed its "
           "air defences shot down most of the missiles.")
OTHER = ("Wheat futures fell for a third day as shipments from Ukrainian Black Sea ports rose to "
         "their highest level since the spring, traders in Chicago and Paris said on Friday, "
         "citing strong export demand from North Africa and the Middle East.")


def fp(doc_id: str, text: str, first_seen: str = "2026-01-01") -> dedup.Fingerprint:
    return dedup.Fingerprint(doc_id, doc_id, text.lower(), dedup.signature(text), first_seen)


def test_rewrite_of_one_wire_story_is_near_duplicate_and_other_story_is_not() -> None:
    assert dedup.similarity(dedup.signature(WIRE), dedup.signature(REWRITE)) >= (
        dedup.NEAR_DUPLICATE_THRESHOLD
    )
    assert dedup.similarity(dedup.signature(WIRE), dedup.signature(OTHER)) < 0.1


def test_decide_story_takes_the_earliest_matching_story() -> None:
    first, second = fp("a", WIRE, "2026-01-01"), fp("b", WIRE + " Update.", "2026-01-02")
    new = fp("c", REWRITE, "2026-01-03")
    assert dedup.decide_story(new, [second, first]).story_id == "a"
    assert dedup.decide_story(new, [first, second]).story_id == "a"


def test_unrelated_article_starts_its_own_story() -> None:
    new = fp("c", OTHER)
    assert dedup.decide_story(new, [fp("a", WIRE)]).story_id == "c"


def test_exact_copy_is_reported_as_duplicate() -> None:
    original, copy = fp("a", WIRE), fp("b", WIRE)
    decision = dedup.decide_story(copy, [original])
    assert decision.duplicate_of == "a" and decision.story_id == "a"


def test_story_index_finds_copies_seen_earlier_in_the_run() -> None:
    index = dedup.StoryIndex()
    index.add(fp("a", WIRE))
    assert [c.doc_id for c in index.candidates(fp("b", REWRITE))] == ["a"]
    assert index.candidates(fp("c", OTHER)) == []


def test_short_texts_have_no_signature() -> None:
    assert dedup.signature("too short") == ()
    assert dedup.band_keys(()) == []


def test_story_index_drops_what_falls_behind_its_horizon() -> None:
    index = dedup.StoryIndex(horizon=timedelta(days=2))
    index.add(fp("a", WIRE, "2026-01-01T00:00:00+00:00"))
    index.add(fp("b", WIRE, "2026-01-02T12:00:00+00:00"))
    assert [c.doc_id for c in index.candidates(fp("c", REWRITE))] == ["a", "b"]
    # Two days and a second after "a": "a" goes, "b" (a copy, same text) is found instead.
    index.add(fp("d", OTHER, "2026-01-03T00:00:01+00:00"))
    assert len(index) == 2
    assert [c.doc_id for c in index.candidates(fp("c", REWRITE))] == ["b"]
    assert dedup.decide_story(fp("e", WIRE), index.candidates(fp("e", WIRE))).duplicate_of == "b"
    # An article that arrives late (older than the newest) is still filed, then dropped in turn.
    index.add(fp("f", REWRITE, "2026-01-02T00:00:00+00:00"))
    index.add(fp("g", OTHER, "2026-01-10T00:00:00+00:00"))
    assert len(index) == 1
    assert index.by_band.keys() == set(dedup.band_keys(fp("g", OTHER).signature))
    assert index.candidates(fp("c", WIRE)) == []


def test_story_index_memory_stays_flat_in_a_long_run() -> None:
    index = dedup.StoryIndex(horizon=timedelta(days=1))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(400):
        text = f"{OTHER} Report number {i} of the day, with figure {i * 7}."
        index.add(fp(str(i), text, (start + timedelta(hours=i)).isoformat()))
    # One article an hour: what is held is the last day's, not the run's.
    assert len(index) == 25
    assert len(index.by_hash) == 25


def test_without_a_horizon_the_index_keeps_everything() -> None:
    index = dedup.StoryIndex(horizon=None)
    index.add(fp("a", WIRE, "2020-01-01T00:00:00+00:00"))
    index.add(fp("b", OTHER, "2026-01-01T00:00:00+00:00"))
    assert [c.doc_id for c in index.candidates(fp("c", REWRITE))] == ["a"]


def test_the_same_document_added_twice_is_held_twice_as_before() -> None:
    index = dedup.StoryIndex()
    first, again = fp("a", WIRE, "2026-01-01T00:00:00+00:00"), fp("a", REWRITE, "2026-01-01")
    index.add(first)
    index.add(again)
    # The first one filed under a key wins, as with the lists this index used to keep.
    assert index.candidates(fp("c", WIRE)) == [first]
    assert len(index) == 2


def test_keys_given_replace_the_fingerprints_own() -> None:
    index = dedup.StoryIndex()
    index.add(fp("a", OTHER), keys=dedup.band_keys(dedup.signature(WIRE)))
    assert [c.doc_id for c in index.candidates(fp("c", WIRE))] == ["a"]
    assert index.candidates(fp("d", OTHER + " Again.")) == []


def facts_fp(doc_id: str, names: set[str],
             numbers: frozenset[str] = frozenset()) -> dedup.Fingerprint:
    """A fingerprint whose story keys are the given names and figures (no publication day:
    the keys carry no week), with no signature (so no band)."""
    features = StoryFeatures(names=frozenset(names), numbers=numbers)
    return dedup.Fingerprint(doc_id, doc_id, doc_id, (), "2026-01-01", features)


def test_of_the_candidates_sharing_story_keys_only_those_sharing_the_rarest_are_offered() -> None:
    index = dedup.StoryIndex(facts_limit=2)
    for i in range(5):  # a common name: every article of the week gives it
        index.add(facts_fp(f"common-{i}", {"Zelensky"}))
    index.add(facts_fp("rare", {"Zelensky", "Avdiivka"}, frozenset({"3350"})))
    index.add(facts_fp("rarer", {"Zelensky"}, frozenset({"3350"})))
    new = facts_fp("new", {"Zelensky", "Avdiivka"}, frozenset({"3350"}))
    # "rare" shares three keys, "rarer" two rare ones; the five share only the common one.
    assert [c.doc_id for c in index.candidates(new)] == ["rare", "rarer"]
    # Without a limit every one sharing a key is offered, as before blocking.
    unlimited = dedup.StoryIndex(facts_limit=None)
    for entry, _ in index._entries.values():
        unlimited.add(entry)
    assert len(unlimited.candidates(new)) == 7


def test_copies_and_near_duplicates_are_offered_beyond_the_limit() -> None:
    index = dedup.StoryIndex(facts_limit=1)
    index.add(facts_fp("keys-a", {"Avdiivka"}, frozenset({"3350"})))
    index.add(facts_fp("keys-b", {"Avdiivka"}, frozenset({"3350"})))
    index.add(dedup.Fingerprint("copy", "copy", "same-hash", dedup.signature(OTHER),
                                "2026-01-01"))
    index.add(dedup.Fingerprint("rewrite", "rewrite", "h", dedup.signature(WIRE), "2026-01-01"))
    new = dedup.Fingerprint("new", "new", "same-hash", dedup.signature(REWRITE), "2026-01-01",
                            StoryFeatures(names=frozenset({"Avdiivka"}),
                                          numbers=frozenset({"3350"})))
    assert [c.doc_id for c in index.candidates(new)] == ["keys-b", "copy", "rewrite"]


def test_only_a_keys_newest_entries_are_read() -> None:
    """The cost of ranking stays flat however common a key becomes in a long run."""
    index = dedup.StoryIndex(facts_limit=None, key_postings=12)
    for i in range(12):
        index.add(facts_fp(f"a{i}", {"Zelensky"}))
    assert len(index.candidates(facts_fp("new", {"Zelensky"}))) == 12
    index.add(facts_fp("a12", {"Zelensky"}))  # now a stop-key: only its newest are read
    assert [c.doc_id for c in index.candidates(facts_fp("new", {"Zelensky"}))] == [
        f"a{i}" for i in range(13 - dedup.STOP_KEY_NEWEST, 13)]


def test_a_rare_key_weighs_more_than_a_common_one() -> None:
    assert dedup.key_weight(1, 1000) > 2 * dedup.key_weight(100, 1000)
    assert dedup.key_weight(1000, 1000) > 0


def test_a_stored_index_filed_under_the_wanted_keys_only_offers_the_same_candidates() -> None:
    """GroupStoriesFn and MergeStoriesFn file stored documents only under the keys the batch
    asked for: every query of the batch gets the candidates that filing all keys gives."""
    rng = random.Random(14)
    pool = [f"name{i}" for i in range(40)]
    docs = []
    for i in range(400):
        names = set(rng.sample(pool[: 5 + i % 35], 3))
        keys = facts_fp("x", names).story_keys
        docs.append({"doc_id": f"d{i}", "story_id": f"s{i % 50}", "text_hash": f"h{i % 7}",
                     "first_seen_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}",
                     "lsh_bands": [f"{b}:{rng.randrange(30)}" for b in range(4)],
                     "story_keys": keys})
    queries = [facts_fp(f"q{i}", set(rng.sample(pool, 2))) for i in range(20)]
    wanted = {k for q in queries for k in q.story_keys}
    everything = dedup.StoryIndex(horizon=None, key_postings=20)
    for d in docs:
        everything.add(dedup.Fingerprint(d["doc_id"], d["story_id"], d["text_hash"], (),
                                         d["first_seen_at"]),
                       keys=[*d["lsh_bands"], *d["story_keys"]])
    some = stored_index(docs, wanted, features=False)
    some.key_postings = 20
    assert sum(len(keys) for _, keys in some._entries.values()) < sum(
        len(keys) for _, keys in everything._entries.values()) / 2
    offered = [[c.doc_id for c in everything.candidates(q)] for q in queries]
    assert sum(map(len, offered)) > 100
    assert [[c.doc_id for c in some.candidates(q)] for q in queries] == offered


def test_a_fingerprints_story_keys_are_made_once_and_not_pickled() -> None:
    """Fingerprint caches its blocking keys: the same keys every time, a copy a caller may
    change, and not in the state runners pickle between stages."""
    import pickle

    from newsmon.pipeline.story import blocking_keys

    one = facts_fp("a", {"Avdiivka", "Bakhmut"}, frozenset({"155"}))
    keys = one.story_keys
    assert keys == blocking_keys(one.features) and keys
    keys.append("changed")
    assert one.story_keys == blocking_keys(one.features)
    assert "_story_keys" in one.__dict__  # cached ...
    again = pickle.loads(pickle.dumps(one))
    assert "_story_keys" not in again.__dict__  # ... and not carried
    assert again == one and again.story_keys == one.story_keys
    assert fp("b", WIRE).story_keys == []  # no features, no keys


def _ranked_by_a_loop(index: dedup.StoryIndex, new: dedup.Fingerprint) -> set[str]:
    """The facts candidates as the ranking was first written: a dict of summed weights per
    entry, in key order, and the facts_limit largest (weight, entry) pairs."""
    weights: dict[int, float] = {}
    held = len(index)
    for key in new.story_keys:
        posted = index.by_band.get(key)
        if not posted:
            continue
        weight = dedup.key_weight(len(posted), held)
        for entry in (posted if len(posted) <= index.key_postings
                      else posted[-dedup.STOP_KEY_NEWEST:]):
            weights[entry] = weights.get(entry, 0.0) + weight
    assert index.facts_limit is not None
    top = sorted(((w, e) for e, w in weights.items()), reverse=True)[:index.facts_limit]
    return {index._entries[e][0].doc_id for _, e in top}


def test_the_facts_ranking_in_numpy_offers_what_a_loop_over_the_keys_offers() -> None:
    """StoryIndex.candidates sums the key weights per entry in numpy: the same sums, bit for
    bit, and so the same candidates, ties and stop-keys included, as the loop it replaced."""
    rng = random.Random(5)
    names = [f"name{i}" for i in range(40)]
    index = dedup.StoryIndex(facts_limit=7, key_postings=12)
    for i in range(400):
        new = facts_fp(f"d{i}", set(rng.sample(names[: 5 + i % 35], 4)),
                       frozenset({str(rng.randrange(30))}))
        offered = {c.doc_id for c in index.candidates(new)}
        assert offered == _ranked_by_a_loop(index, new), i
        index.add(new)
    assert len(index) == 400
