from newsmon.pipeline import stories as dedup

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
