"""Numbers read from the network, parsed strictly and bounded.

Python's own parsers take more than a server should be able to send: ``str.isdigit`` is true
for ``'²'`` (which ``int()`` then refuses), ``int()`` and ``float()`` read Arabic-Indic digits,
underscores and surrounding Unicode white space, ``int()`` raises beyond 4,300 digits and
``float()`` turns 400 nines into ``inf`` (whose ``round`` raises ``OverflowError``). And a value
Python holds may not fit where it goes: SQLite's INTEGER ends at ``2**63 - 1``.

Every number a connector takes from a page goes through :func:`parse_ascii_int`: ASCII digits
only, a bounded length, a bounded range, and ``None`` for anything else, so the caller decides
whether a bad value costs the field (ignored) or the item (a dead letter), never the page. Not
a library function: the standard library has no strict ASCII integer parser, and the few lines
here are the whole of it.
"""

from __future__ import annotations

import re

#: The largest integer the state store keeps (SQLite INTEGER is a signed 64-bit integer).
MAX_STORED_INT = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
#: White space around a number that a page or header may carry (ASCII only: U+00A0 or U+3000
#: around digits is no plain number).
_ASCII_SPACE = " \t\r\n\f\v"


def parse_ascii_int(text: str | None, *, minimum: int = 0,
                    maximum: int = MAX_STORED_INT) -> int | None:
    """The non-negative integer ``text`` spells in ASCII digits (ASCII white space around it
    allowed, leading zeros too), if it lies in ``[minimum, maximum]``; else ``None``.

    Refused: signs, ``_``, decimal points, exponents, non-ASCII digits, empty text, and values
    out of range however many digits they have (the length is checked before converting, so a
    million digits cost one scan and no big-integer arithmetic).
    """
    if text is None:
        return None
    digits = text.strip(_ASCII_SPACE)
    if not _ASCII_DIGITS.fullmatch(digits):
        return None
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant)
    return value if minimum <= value <= maximum else None


__all__ = ["MAX_STORED_INT", "parse_ascii_int"]
