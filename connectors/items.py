"""What happens to a poll's items between the connector and the publisher, as plain functions:
dedup against the seen marks, the check that an item can be published and marked at all, and
the dead letters a poll leaves (runner.py calls them in that order; see its docstring).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from newsmon.connectors.base import PollResult, Problem, SourceBase
from newsmon.connectors.records import seen_mark_problem, storable_text
from newsmon.connectors.state import StateStore
from newsmon.models import DeadLetter, RawItem

#: Problems that drop input (an entry or post that could not be read, a page over the size
#: limit): parked as dead letters. The others (a repaired encoding, a moved feed, a failed
#: full-text fetch whose item went out with its summary) lose nothing and are only counted.
DEAD_LETTER_PROBLEMS = frozenset({"empty-entry", "bad-entry", "bad-post", "too-deep",
                                  "full-text-too-large", "unstorable-item",
                                  # GDELT (gdelt.py): a row, a file, an article page.
                                  "bad-row", "bad-file", "over-limit", "article-unreachable",
                                  "article-empty"})
#: The largest item (as JSON) a poll publishes. kafka-python refuses a record over its
#: max_request_size (1 MiB by default) before sending, which fails the whole batch: one such
#: item would keep every item of its source unpublished on every poll. Parked instead.
MAX_ITEM_BYTES = 1_000_000


def new_items(
    items: Sequence[RawItem], store: StateStore, source_id: str
) -> tuple[list[RawItem], int, int, list[Problem]]:
    """Items to publish: new ones, and known ones with a new revision as updates (keeping the
    time they were first seen). Repeats within one document are counted as problems."""
    seen = store.seen_revisions(source_id, (i.item_id for i in items))
    out: list[RawItem] = []
    in_batch: set[str] = set()
    problems: list[Problem] = []
    new = updated = 0
    for item in items:
        if item.item_id in in_batch:
            problems.append(
                Problem(kind="duplicate-entry", message=f"{item.guid or item.url or item.title!r}"
                        " appears twice in one document; the first is kept")
            )
            continue
        in_batch.add(item.item_id)
        known = seen.get(item.item_id)
        if known is None:
            out.append(item)
            new += 1
        elif known.revision != item.revision:
            out.append(
                item.model_copy(update={"is_update": True, "first_seen_at": known.first_seen_at})
            )
            updated += 1
    return out, new, updated, problems


def unpublishable(item: RawItem) -> str | None:
    """Why ``item`` can be neither published nor marked seen, or None. Such an item would be
    published again on every poll (or block its source's batch), so the runner parks it as a
    dead letter instead. Checks what the publisher and the state store will do with it:
    encode it as JSON and read it back, keep it under :data:`MAX_ITEM_BYTES`, store its seen
    mark."""
    problem = seen_mark_problem(item.item_id, item.revision, item.first_seen_at)
    if problem is not None:
        return problem
    try:
        data = item.to_json()
        RawItem.from_json(data)
    # pydantic's serialization and validation errors are ValueErrors; a time zone can
    # overflow a date while it is converted.
    except (ValueError, OverflowError) as exc:
        return f"cannot be encoded: {type(exc).__name__}: {exc}"
    if len(data) > MAX_ITEM_BYTES:
        return f"{len(data)} bytes as JSON, over the {MAX_ITEM_BYTES} a message may have"
    return None


def publishable(items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], list[Problem]]:
    """The items that can be published and marked, and an ``unstorable-item`` problem (a dead
    letter) for each of the others, naming the item and why."""
    good: list[RawItem] = []
    problems: list[Problem] = []
    for item in items:
        reason = unpublishable(item)
        if reason is None:
            good.append(item)
            continue
        name = storable_text(item.guid or item.url or item.title or str(item.item_id), 300)
        problems.append(Problem(kind="unstorable-item", message=f"{name!r}: {reason}"))
    return tuple(good), problems


def dead_letters(source: SourceBase, result: PollResult,
                 problems: Sequence[Problem]) -> list[DeadLetter]:
    """Dead letters for what a poll could not turn into items: a failed fetch or document
    (``result.status == "error"``), and the problems in :data:`DEAD_LETTER_PROBLEMS`."""
    found = [(p.kind, p.message) for p in problems if p.kind in DEAD_LETTER_PROBLEMS]
    if result.status == "error":
        found.append((result.error_kind or "error", result.error or ""))
    # Messages quote what a server sent: made encodable first (the letter's id hashes them).
    return [
        DeadLetter.make(stage="poll", error=storable_text(f"{kind}: {message}"),
                        source_id=source.id,
                        payload=json.dumps({"source": source.location, "kind": kind,
                                            "detail": storable_text(message, 2000)},
                                           ensure_ascii=False))
        for kind, message in found
    ]
