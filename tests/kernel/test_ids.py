"""The content-derived ids of newsmon.models: the same content gives the same id, in every run
and on every machine (pinned literals: a changed hash would re-index everything and alert
again); what identifies a thing changes its id, and nothing else does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsmon.models import Alert, DeadLetter, RawItem, SourceRef, content_id

SOURCE = SourceRef(id="wire", type="rss")
SEEN = datetime(2024, 1, 1, tzinfo=UTC)


def item(**changes: object) -> RawItem:
    fields: dict[str, object] = {"source": SOURCE, "guid": "g-1", "url": "https://x.example/a",
                                 "title": "T", "summary": "S", "first_seen_at": SEEN}
    fields.update(changes)
    return RawItem.make(**fields)  # type: ignore[arg-type]


def test_ids_are_pinned_across_runs_and_versions() -> None:
    assert content_id("a", "b") == "f04cdced9736a69da6103f08"
    assert (item().item_id, item().revision) == ("8fd6ce7d16da8a9ddf02d074", "c5c40f7e002f0d56")
    assert Alert.id_for("lrs", "story-1") == "06d4cb39a3fec7e81ccf33d7"
    letter = DeadLetter.make(stage="decode", error="e", source_id="wire", payload="p")
    assert letter.dl_id == "0aafc99626ee6dd0b5bfefeb"


def test_parts_are_separated_not_concatenated() -> None:
    assert content_id("ab", "c") != content_id("a", "bc")
    assert len(content_id("x")) == 24 and len(content_id("x", length=16)) == 16


def test_the_same_item_polled_again_keeps_its_id_and_revision() -> None:
    again = item(first_seen_at=SEEN + timedelta(hours=5), published_at=SEEN, is_update=True)
    assert (again.item_id, again.revision) == (item().item_id, item().revision)


@pytest.mark.parametrize("changes", [{"title": "T2"}, {"summary": "S2"}, {"content": "C"}])
def test_new_content_is_a_new_revision_of_the_same_item(changes: dict[str, object]) -> None:
    changed = item(**changes)
    assert changed.item_id == item().item_id
    assert changed.revision != item().revision


def test_the_item_is_identified_by_guid_then_url_then_text() -> None:
    assert item(url="https://x.example/b").item_id == item().item_id  # the guid decides
    assert item(guid="g-2").item_id != item().item_id
    no_guid = item(guid="")
    assert no_guid.item_id == item(guid="", title="other").item_id  # then the url
    assert no_guid.item_id != item(guid="", url="https://x.example/b").item_id
    bare = item(guid="", url="")
    assert bare.item_id != item(guid="", url="", title="other").item_id  # then the text


def test_the_same_guid_in_another_source_is_another_item() -> None:
    other = item(source=SourceRef(id="agency", type="rss"))
    assert other.item_id != item().item_id


def test_an_alert_is_one_per_rule_and_story() -> None:
    assert Alert.id_for("lrs", "s1") == Alert.id_for("lrs", "s1")
    assert len({Alert.id_for("lrs", "s1"), Alert.id_for("lrs", "s2"),
                Alert.id_for("troops", "s1")}) == 3


def test_a_dead_letter_parked_twice_is_one_letter() -> None:
    first = DeadLetter.make(stage="decode", error="e1", source_id="wire", payload="p")
    # the error text and the time may differ on a second try; the letter is the same
    again = DeadLetter.make(stage="decode", error="e2", source_id="wire", payload="p")
    assert first.dl_id == again.dl_id
    assert DeadLetter.make(stage="normalize", error="e1", source_id="wire",
                           payload="p").dl_id != first.dl_id
    assert DeadLetter.make(stage="decode", error="e1", source_id="wire",
                           payload="q").dl_id != first.dl_id
