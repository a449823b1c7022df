"""Listing, replaying and discarding dead letters after a fix (a rule, a parser, a mapping).

A dead letter keeps what its stage received: the raw message (``decode``), the raw item
(``normalize``) or the article (later stages). Replay turns each back into a raw record and
runs it through the same pipeline; if it fails again it is parked again, under the same id.
A letter that no fix will ever handle is discarded: kept with when and why, but no longer
listed as pending nor replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from newsmon.models import Article, DeadLetter, RawItem
from newsmon.pipeline.io_kafka import RawRecord
from newsmon.pipeline.store import DocumentStore


def _letter(doc: dict[str, Any]) -> DeadLetter:
    return DeadLetter.model_validate({k: v for k, v in doc.items()
                                      if k in DeadLetter.model_fields})


def pending(
    store: DocumentStore, stage: str | None = None, limit: int = 10_000
) -> list[DeadLetter]:
    """The letters neither replayed nor discarded, oldest first."""
    docs = store.find_terms("dead-letters", "replayed", ["false"], size=limit)
    letters = [_letter(d) for d in docs if not d.get("discarded_at")]
    return sorted((dl for dl in letters if stage is None or dl.stage == stage),
                  key=lambda dl: dl.created_at)


def discarded(store: DocumentStore, limit: int = 10_000) -> list[tuple[DeadLetter, str, str]]:
    """The discarded letters, oldest first, each with when and why it was discarded."""
    docs = store.find_terms("dead-letters", "replayed", ["false"], size=limit)
    out = [(_letter(d), str(d["discarded_at"]), str(d.get("discard_reason") or ""))
           for d in docs if d.get("discarded_at")]
    return sorted(out, key=lambda row: row[0].created_at)


class UnknownLetter(LookupError):
    """No pending letter, or more than one, has the id (or id prefix) asked for."""


def find_pending(store: DocumentStore, id_or_prefix: str) -> DeadLetter:
    """The one pending letter whose id is ``id_or_prefix`` or starts with it (the listing
    shows the first 12 characters)."""
    matches = [dl for dl in pending(store) if dl.dl_id.startswith(id_or_prefix)]
    if len(matches) != 1 or not id_or_prefix:
        what = "no pending dead letter" if not matches else f"{len(matches)} pending letters"
        raise UnknownLetter(f"{what} with id {id_or_prefix!r}")
    return matches[0]


def discard(store: DocumentStore, letter: DeadLetter, reason: str, now: datetime) -> None:
    """Record that ``letter`` will not be handled: kept, with when and why, but out of
    :func:`pending` and so out of replay."""
    doc = letter.document(replayed=False) | {"discarded_at": now.isoformat(),
                                             "discard_reason": reason}
    failures = store.bulk_write("dead-letters", [(letter.dl_id, doc)])
    if failures:
        raise RuntimeError(f"dead letter {letter.dl_id}: discard not recorded: {failures[0]}")
    store.refresh("dead-letters")


def error_line(error: str, width: int = 120) -> str:
    """The error as one table cell: its first non-blank line, cut to ``width`` characters,
    with ``…`` when anything was left out (a traceback must not break the table)."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    cut = first[:width - 1] if len(first) > width else first
    return cut + ("…" if cut != first or len(lines) > 1 else "")


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
