"""Listing and replaying dead letters after a fix (a rule, a parser, a mapping).

A dead letter keeps what its stage received: the raw message (``decode``), the raw item
(``normalize``) or the article (later stages). Replay turns each back into a raw record and
runs it through the same pipeline; if it fails again it is parked again, under the same id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsmon.models import Article, DeadLetter, RawItem
from newsmon.pipeline.io_kafka import RawRecord
from newsmon.pipeline.store import DocumentStore


def pending(
    store: DocumentStore, stage: str | None = None, limit: int = 10_000
) -> list[DeadLetter]:
    docs = store.find_terms("dead-letters", "replayed", ["false"], size=limit)
    letters = [DeadLetter.model_validate({k: v for k, v in d.items() if k != "replayed"})
               for d in docs]
    return sorted((dl for dl in letters if stage is None or dl.stage == stage),
                  key=lambda dl: dl.created_at)


def as_record(letter: DeadLetter) -> RawRecord:
    """The record to feed the pipeline again for this dead letter."""
    if letter.stage in ("decode", "normalize"):
        payload = letter.payload.encode("utf-8")
        return RawRecord(letter.source_id, payload, f"replay/{letter.dl_id}")
    article = Article.model_validate_json(letter.payload)
    item = RawItem(
        item_id=article.item_id,
        revision=article.revision,
        source=article.source,
        url=article.url,
        title=article.title,
        summary=article.text,
        published_at=article.published_at,
        first_seen_at=article.first_seen_at,
    )
    return RawRecord(letter.source_id, item.to_json(), f"replay/{letter.dl_id}")


def mark(store: DocumentStore, letters: Sequence[DeadLetter], replayed: bool) -> None:
    docs: list[tuple[str, dict[str, Any]]] = [
        (dl.dl_id, dl.document(replayed=replayed)) for dl in letters]
    store.bulk_write("dead-letters", docs)
