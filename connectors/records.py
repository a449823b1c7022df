"""What the state store keeps and what fits in it: the :class:`Cursor`, :class:`Health` and
:class:`SeenRevision` records, and the checks a value from the network passes before it is
written to a column (state.py stores them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeGuard

from pydantic import BaseModel, ConfigDict, Field

from newsmon.connectors.fields import MAX_STORED_INT


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cursor(_Frozen):
    """Where the next poll of one source starts.

    Its fields come from the network (headers, a page's post ids), so the runner passes every
    new cursor through :func:`storable_cursor` before it is stored: a value the store cannot
    keep, or that could not be sent back as a header, is dropped, never stored half-way.
    """

    etag: str | None = None
    last_modified: str | None = None
    last_message_id: int | None = Field(default=None, ge=0, le=MAX_STORED_INT)
    #: Hash of the last feed document parsed: a server without ETag or Last-Modified that
    #: sends the same bytes again costs a hash, not a parse.
    body_sha256: str | None = None


class Health(_Frozen):
    """The stored health of one source (all times UTC)."""

    source_id: str
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    #: Consecutive failures that retrying will not fix (404, a name that does not resolve...);
    #: the source is disabled when this reaches the configured limit.
    hard_failures: int = 0
    items_seen: int = 0
    #: Broken input that still yielded something (bozo feeds, unreadable entries), cumulative.
    parse_errors: int = 0
    last_new_item_at: datetime | None = None
    last_status: int | None = None
    next_due_at: datetime | None = None
    disabled: bool = False
    disabled_reason: str | None = None


class SeenRevision(_Frozen):
    revision: str
    first_seen_at: datetime


#: Longest text a state column keeps (an error, a disabled reason, a dead letter's detail): what
#: an operator reads, not a copy of the page that caused it.
MAX_STORED_TEXT = 4000
#: Longest ETag or Last-Modified kept. Both are sent back as request headers, so only visible
#: ASCII and spaces (RFC 9110's field-value without obs-text) are kept; anything else costs the
#: conditional GET (one full fetch), never the feed.
MAX_VALIDATOR_CHARS = 1024
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*", re.ASCII)
#: Any UTF-16 surrogate in a Python str is a lone one: UTF-8 (SQLite, JSON) cannot encode it.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Longest item id, revision or body hash kept (all are hex digests; anything longer is no id).
_MAX_ID_CHARS = 256


def storable_text(value: str, limit: int = MAX_STORED_TEXT) -> str:
    """``value`` as SQLite and a JSON encoder can keep it: lone surrogates (which neither
    encodes) become U+FFFD and the text is cut to ``limit`` characters."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return _SURROGATE.sub("\ufffd", value)


def storable_int(value: object) -> TypeGuard[int]:
    """True for an int (not a bool) that fits SQLite's INTEGER."""
    return (isinstance(value, int) and not isinstance(value, bool)
            and -MAX_STORED_INT - 1 <= value <= MAX_STORED_INT)


def storable_time(value: object) -> bool:
    """True for an aware datetime that can be stored as UTC (a zone offset can push a time at
    the edge of datetime's range over it)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return False
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def storable_id(value: object) -> bool:
    """True for an id, revision or hash the store can keep (and a lookup can match)."""
    return (isinstance(value, str) and 0 < len(value) <= _MAX_ID_CHARS
            and _SURROGATE.search(value) is None and "\x00" not in value)


def _header_value(value: object) -> bool:
    return (isinstance(value, str) and len(value) <= MAX_VALIDATOR_CHARS
            and _HEADER_VALUE.fullmatch(value) is not None)


#: What each cursor field must be to be stored (None always may); a new field needs a check.
_CURSOR_CHECKS: dict[str, Callable[[object], bool]] = {
    "etag": _header_value,
    "last_modified": _header_value,
    "last_message_id": lambda value: storable_int(value) and value >= 0,
    "body_sha256": storable_id,
}


def storable_cursor(cursor: Cursor, previous: Cursor) -> tuple[Cursor, tuple[str, ...]]:
    """``cursor`` with every field the store cannot keep replaced, and the names of those
    fields. A bad message id keeps ``previous``'s (the next poll pages back from there and the
    seen marks drop what was published); a bad ETag, Last-Modified or hash becomes None (the
    next fetch is unconditional). Cursors are built with ``model_copy`` too, which validates
    nothing, so the check is here, where they are stored."""
    update: dict[str, object] = {}
    for name, check in _CURSOR_CHECKS.items():
        value = getattr(cursor, name)
        if value is not None and not check(value):
            fallback = getattr(previous, name) if name == "last_message_id" else None
            update[name] = fallback if fallback is None or check(fallback) else None
    if not update:
        return cursor, ()
    return cursor.model_copy(update=update), tuple(update)


def seen_mark_problem(item_id: object, revision: object, first_seen_at: object) -> str | None:
    """Why a seen mark could not be stored, or None. The runner asks before publishing: an item
    published but never marked would be published again on every poll."""
    if not storable_id(item_id):
        return "item_id is not a storable id"
    if not storable_id(revision):
        return "revision is not a storable id"
    if not storable_time(first_seen_at):
        return "first_seen_at is not a storable time"
    return None
