"""Reading single fields that come from the network: numbers, header tokens, charset names.

Every number, validator and charset name a server or a feed sends goes through here, so one
strict reading holds everywhere. The traps it closes:

- ``str.isdigit()`` is true for ``'²'``, ``'٣'`` and other Unicode digits, and ``int()`` then
  either raises (``'²'``) or reads a number no server meant (``'٣'`` is 3); thousands of
  digits make ``int()`` raise (Python's limit on digits) and huge values overflow timestamps
  and SQLite integers later (INTEGER ends at ``2**63 - 1``). :func:`ascii_int` accepts ASCII
  digits only, a bounded number of them in a bounded range, and nothing else: no sign, no
  fraction, no exponent, no underscore. The caller decides whether ``None`` costs the field
  (ignored) or the item (a dead letter), never the page. Not a library function: the standard
  library has no strict ASCII integer parser, and the few lines here are the whole of it.
- A header value that is not visible ASCII cannot be sent back: httpx encodes outgoing header
  values as ASCII and raises on anything else, so a stored ETag of ``"é"`` would fail every
  later conditional GET of its feed. :func:`header_token` keeps only values that can go back.
- A charset name is a codec name to Python: ``undefined`` raises on every decode (feedparser
  lets that escape), ``unicode_escape`` interprets backslashes, ``rot13`` and ``base64`` are
  not text encodings at all. :func:`text_codec` admits real text encodings only.
- Telegram's preview shows views as "1.2K" and dates as ISO 8601: :func:`parse_views` and
  :func:`parse_post_date` read them exactly or not at all (a bad one costs the field).
"""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime

#: Most numbers a server sends (seconds, minutes, bytes) fit in nine digits: 31 years of
#: seconds, 1,900 years of minutes, a gigabyte.
MAX_DIGITS = 9
#: The largest integer the state store keeps (SQLite INTEGER is a signed 64-bit integer).
MAX_STORED_INT = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")
#: White space around a number that a page or header may carry (ASCII only: U+00A0 or U+3000
#: around digits is no plain number).
_ASCII_SPACE = " \t\r\n\f\v"
#: Visible ASCII, space and tab (RFC 9110 field content without obs-text), bounded.
_HEADER_TOKEN = re.compile(r"[\x20-\x7e\t]{1,1024}")
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([^;"'\s]*)""", re.IGNORECASE)
_CHARSET_NAME = re.compile(r"[A-Za-z0-9._:+-]{1,40}")
#: Codecs that decode bytes to text but are not character sets: they raise on every input,
#: interpret escapes, or are meant for host names.
_NOT_CHARSETS = frozenset(
    {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode"}
)


def ascii_int(
    value: object,
    *,
    max_digits: int | None = MAX_DIGITS,
    minimum: int = 0,
    maximum: int | None = None,
) -> int | None:
    """The non-negative integer ``value`` spells in plain ASCII digits (ASCII white space
    around it allowed), if it lies in ``[minimum, maximum]``; else None: for Unicode digits,
    signs, fractions, exponents, empty values, anything not a string, and more than
    ``max_digits`` digits (leading zeros included; ``None``: only the range bounds it). The
    length is checked before converting, so a million digits cost one scan and no big-integer
    arithmetic."""
    if not isinstance(value, str):
        return None
    text = value.strip(_ASCII_SPACE)
    if not text or not _DIGITS.fullmatch(text):
        return None
    if max_digits is not None and len(text) > max_digits:
        return None
    significant = text.lstrip("0") or "0"
    if maximum is not None and len(significant) > len(str(maximum)):
        return None
    number = int(significant)
    if number < minimum or (maximum is not None and number > maximum):
        return None
    return number


def header_token(value: object) -> str | None:
    """``value`` when it can be sent back in a request header as it came (a validator such as
    ETag or Last-Modified), else None."""
    if isinstance(value, str) and _HEADER_TOKEN.fullmatch(value) and value.strip():
        return value
    return None


def charset_param(content_type: str | None) -> str | None:
    """The raw ``charset`` parameter of a Content-Type value ('' when present but empty), or
    None when there is none. Not checked: see :func:`text_codec`."""
    if not content_type:
        return None
    match = _CHARSET_PARAM.search(content_type)
    return match.group(1) if match else None


def text_codec(name: str | None) -> str | None:
    """Python's canonical name of the character set ``name``, or None when ``name`` is no
    text encoding Python can decode with ``errors="replace"`` (unknown, a transform such as
    ``base64``, or one of the codecs listed in ``_NOT_CHARSETS``)."""
    if not name or not _CHARSET_NAME.fullmatch(name):
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    # CodecInfo marks bytes-to-bytes and str-to-str codecs (base64, rot13) this way; the
    # attribute is private but has been there since Python 3.4 and is what str.encode checks.
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


#: Telegram views as the page shows them: ASCII digits, one decimal mark, K or M ("1.2K", "12,7K").
_VIEWS = re.compile(r"\s*([0-9]{1,12})(?:[.,]([0-9]{1,3}))?\s*([KkMm]?)\s*", re.ASCII)
_VIEW_FACTORS = {"": 1, "K": 1_000, "M": 1_000_000}
#: Post dates outside these are no post dates (Telegram started in 2013). Keeping them out
#: also means no later arithmetic on a date (a day before, a week after) leaves datetime's range.
EARLIEST_DATE = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(3000, 1, 1, tzinfo=UTC)
_MAX_DATE_CHARS = 64


def parse_views(text: str | None) -> int | None:
    """ "401" -> 401, "1.2K" -> 1200, "3M" -> 3000000; None when unreadable or not plain ASCII
    (a views counter is worth nothing to the item, so a bad one is ignored, never fatal)."""
    match = _VIEWS.fullmatch(text or "")
    if not match:
        return None
    whole: str = match.group(1)
    fraction: str = match.group(2) or "0"
    suffix: str = match.group(3).upper()
    # Integers, rounded half up: at most 12 + 3 digits times a million stays exact and far
    # below 2**63, where a float would already be off by a few units.
    scale: int = 10 ** len(fraction)
    numerator = (int(whole) * scale + int(fraction)) * _VIEW_FACTORS[suffix]
    return (2 * numerator + scale) // (2 * scale)


def parse_post_date(value: str | None) -> datetime | None:
    """The UTC time of a ``<time datetime="...">`` attribute (ISO 8601; a time without zone is
    UTC), or None when it is missing, unreadable, or outside :data:`EARLIEST_DATE` ..
    :data:`LATEST_DATE` (the post keeps no date; the item is first seen now)."""
    if not value or len(value) > _MAX_DATE_CHARS or not value.isascii():
        return None
    try:
        date = datetime.fromisoformat(value)
        # A zone offset can push a time at the edge of datetime's range over it.
        date = date.astimezone(UTC) if date.tzinfo else date.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return date if EARLIEST_DATE <= date < LATEST_DATE else None
