"""GroupStoriesFn against a real store: each article is compared with the stored documents that
share its own text hash, band or story key, so its story does not depend on the other articles
of its batch, and copies in the store are still found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsmon.models import Article
from newsmon.pipeline.normalize import normalize_item
from newsmon.pipeline.stages.base import RunContext
from newsmon.pipeline.stages.store import GroupStoriesFn, Placed, WriteDocumentsFn
from tests.pipeline.samples import OTHER, REWRITE, TROOPS, WIRE, sample_item, store_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["embedded", "elasticsearch"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunContext]:
    with store_context(request.param, tmp_path, prefix="grouptest") as context:
        yield context


def article(guid: str, text: str, minutes: int, lang: str = "en") -> Article:
    return normalize_item(sample_item(f"src-{guid}", guid, "", text, minutes=minutes,
                                      lang=lang))


def place(ctx: RunContext, texts: dict[str, tuple[str, int]],
          langs: dict[str, str] | None = None) -> dict[str, Placed]:
    """Group one batch with a fresh worker (an empty in-run index: candidates come from the
    store alone), write it, and return what was placed by guid."""
    fn = GroupStoriesFn(ctx)
    fn.setup()
    writer = WriteDocumentsFn(ctx)
    writer.setup()
    try:
        batch = [article(guid, text, minutes, (langs or {}).get(guid, "en"))
                 for guid, (text, minutes) in texts.items()]
        (placed,) = list(fn.process(batch))
        assert [out for out in writer.process(placed) if not isinstance(out, list)] == []
        writer.db().refresh("articles")
    finally:
        fn.teardown()
        writer.teardown()
    return {p.article.url.rsplit("/", 1)[1]: p for p in placed}


def test_stored_copies_are_found_and_the_batch_does_not_change_a_decision(
        ctx: RunContext) -> None:
    first = place(ctx, {"wire": (WIRE, 0), "troops": (TROOPS, 0)})
    wire_story = first["wire"].article.story_id
    alone = place(ctx, {"rewrite": (REWRITE, 60)})
    together = place(ctx, {"rewrite2": (REWRITE + " Kyiv confirmed.", 61),
                           "copy": (WIRE, 62), "other": (OTHER, 63)})
    assert alone["rewrite"].article.story_id == wire_story
    assert together["rewrite2"].article.story_id == wire_story
    assert together["copy"].article.story_id == wire_story
    assert together["copy"].duplicate_of == first["wire"].article.doc_id
    # Unrelated articles keep their own story, whatever shares their batch.
    assert together["other"].article.story_id == together["other"].article.doc_id
    assert first["troops"].article.story_id == first["troops"].article.doc_id


def test_a_stored_translation_is_found_on_its_facts(ctx: RunContext) -> None:
    """A stored document that shares no words with the article (another language) is its
    story's candidate through the store, and its story features (decoded only for the
    candidates offered: GroupStoriesFn) decide it."""
    gold = {d["id"]: d for d in map(json.loads, (ROOT / "tests" / "gold" / "stories"
                                                 / "articles.jsonl").open(encoding="utf-8"))}
    en, pl = gold["kakhovka-en-warukraine"], gold["kakhovka-pl-fakt"]
    first = place(ctx, {"en": (en["text"], 0), "troops": (TROOPS, 0)})
    later = place(ctx, {"pl": (pl["text"], 60), "other": (OTHER, 61)}, langs={"pl": "pl"})
    assert later["pl"].article.story_id == first["en"].article.story_id
    assert later["pl"].duplicate_of is None
    assert later["other"].article.story_id == later["other"].article.doc_id
