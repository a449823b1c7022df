"""Unit tests of dead letters (pipeline/deadletters.py): listing what is pending, turning a
letter back into the record its stage received, marking letters replayed. On the embedded
store, which keeps the same contract as the servers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsmon.models import Article, DeadLetter, RawItem, SourceRef
from newsmon.pipeline import deadletters as dl
from newsmon.pipeline.store import DocumentStore, SqliteStore

SOURCE = SourceRef(id="wire", type="rss")
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def letter(stage: str, payload: str, source_id: str = "wire") -> DeadLetter:
    return DeadLetter.make(stage=stage, error="ValueError: bad", source_id=source_id,  # type: ignore[arg-type]
                           payload=payload)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "docs.sqlite")


def test_pending_lists_unreplayed_letters_oldest_first_and_filters_by_stage(
    store: SqliteStore,
) -> None:
    a, b, c = letter("decode", "a"), letter("normalize", "b"), letter("decode", "c")
    store.bulk_write("dead-letters", [(x.dl_id, x.document()) for x in (c, a, b)])
    assert [x.dl_id for x in dl.pending(store)] == [a.dl_id, b.dl_id, c.dl_id]
    assert [x.dl_id for x in dl.pending(store, stage="decode")] == [a.dl_id, c.dl_id]
    dl.mark(store, [a], replayed=True)
    assert [x.dl_id for x in dl.pending(store)] == [b.dl_id, c.dl_id]
    assert store.get("dead-letters", a.dl_id).source["replayed"] is True  # type: ignore[union-attr]
    dl.mark(store, [a], replayed=False)
    assert len(dl.pending(store)) == 3


def test_a_decode_letter_replays_its_raw_bytes() -> None:
    record = dl.as_record(letter("decode", "{not json", source_id="wire"))
    assert record.payload == b"{not json" and record.key == "wire"
    assert record.origin.startswith("replay/")


def test_a_later_stage_letter_replays_as_the_raw_item_of_its_article() -> None:
    article = Article(doc_id="d1", item_id="i1", revision="r1", story_id="d1", source=SOURCE,
                      url="https://x/a", title="T", text="body", lang="en", published_at=T0,
                      first_seen_at=T0)
    record = dl.as_record(letter("classify", article.model_dump_json()))
    item = RawItem.from_json(record.payload)
    assert (item.item_id, item.revision, item.url, item.summary) == ("i1", "r1", "https://x/a",
                                                                     "body")
    assert item.first_seen_at == T0


def test_a_letter_is_stored_with_its_replayed_flag(store: SqliteStore) -> None:
    x = letter("write", "p")
    assert x.document() == x.model_dump(mode="json") | {"replayed": False}
    assert x.document(replayed=True)["replayed"] is True


def discard_contract(store: DocumentStore) -> None:
    """A discarded letter is kept, with when and why, but neither pending nor replayed."""
    a, b = letter("normalize", "a"), letter("classify", "b")
    store.bulk_write("dead-letters", [(x.dl_id, x.document()) for x in (a, b)])
    store.refresh("dead-letters")
    assert dl.find_pending(store, a.dl_id[:12]) == a
    dl.discard(store, a, "feed sends binary junk", T0)
    assert [x.dl_id for x in dl.pending(store)] == [b.dl_id]
    [(gone, when, reason)] = dl.discarded(store)
    assert gone == a and reason == "feed sends binary junk"
    assert datetime.fromisoformat(when) == T0
    with pytest.raises(dl.UnknownLetter):
        dl.find_pending(store, a.dl_id)  # no longer pending: cannot be discarded twice


def test_discard_on_the_embedded_store(store: SqliteStore) -> None:
    discard_contract(store)


@pytest.mark.integration
def test_discard_on_the_search_server(server_store: DocumentStore) -> None:
    # The dead-letter mapping is strict: the discard fields must be in it.
    discard_contract(server_store)


def test_an_ambiguous_or_empty_prefix_is_refused(store: SqliteStore) -> None:
    letters = [letter("decode", str(i)) for i in range(40)]
    store.bulk_write("dead-letters", [(x.dl_id, x.document()) for x in letters])
    with pytest.raises(dl.UnknownLetter, match="40 pending letters"):
        dl.find_pending(store, "")
    with pytest.raises(dl.UnknownLetter, match="no pending dead letter"):
        dl.find_pending(store, "zz")


def test_a_multi_line_error_is_one_cut_table_cell() -> None:
    traceback = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: no"
    assert dl.error_line(traceback) == "Traceback (most recent call last):…"
    assert dl.error_line("\n\n  only line  \n") == "only line"
    assert dl.error_line("x" * 200, width=10) == "x" * 9 + "…"
    assert dl.error_line("x" * 10, width=10) == "x" * 10
