"""Entity declarations taken out of feed documents before feedparser parses them, and
character references it cannot decode replaced.

A feed may declare entities in its DOCTYPE and use them in its text. Two attacks follow:

- *billion laughs*: entities nested ten deep, each ten references to the one below;
- *quadratic blowup*: one flat entity of 50 KB referenced 200,000 times (a 650 KB document
  that expands to 10 GB).

feedparser strips nested declarations itself but keeps flat ones ("safe entities") and, when
the strict (expat) parse fails, hands them to its loose parser, which expands every reference
without any limit: the quadratic bomb above exhausts the memory (seen with feedparser 6.0.14;
expat's own amplification limit only covers the strict parse, and still lets a 10 MB document
grow a hundredfold). External entities and DTDs are not fetched (feedparser turns external
general entities off), but nothing a news feed needs is declared in a DTD either.

So every DOCTYPE with an internal subset, and every entity declaration (feedparser collects
them from the whole prolog, inside a DOCTYPE or not), is removed before parsing. References to
entities that are then undeclared stay as literal text (``&name;``) or, for HTML names such as
``&nbsp;``, decode as usual: the output is never larger than the input. The scan is linear in
the document size.

feedparser's loose parser also turns every numeric character reference into a character with
``chr(n).encode()``: ``&#2000000;`` (beyond Unicode), ``&#xD800;`` (a surrogate) or a
reference of thousands of digits raise ``ValueError`` and the whole feed is lost (found by
tests/hostile/test_fuzz.py). Such references become U+FFFD, the replacement character.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_DECL = "<!ENTITY"
#: "<!ENTITY" in every encoding feedparser recognises without a declaration: ASCII-compatible
#: ones (UTF-8, the ISO-8859 and Windows code pages, KOI8), UTF-16 and UTF-32 either way round,
#: and EBCDIC.
_PATTERNS: tuple[tuple[bytes, str], ...] = (
    (_DECL.encode("ascii"), "latin-1"),  # latin-1: one char per byte, so offsets are bytes
    (_DECL.encode("utf-32-le"), "utf-32-le"),
    (_DECL.encode("utf-32-be"), "utf-32-be"),
    (_DECL.encode("utf-16-le"), "utf-16-le"),
    (_DECL.encode("utf-16-be"), "utf-16-be"),
    (_DECL.encode("cp037"), "cp037"),
    (_DECL.encode("cp500"), "cp500"),
)
_BOMS = {
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
}
_ENTITY_DECL = re.compile(r"<!ENTITY[^>]*>?")
#: As feedparser's parsers read them: the ``;`` is optional.
_CHAR_REF = re.compile(r"&#([0-9]+|[xX][0-9a-fA-F]+)")
_REPLACEMENT = "&#xFFFD"
_XML_DECL_ENCODING = re.compile(r"^(\s*<\?xml[^>]*?\sencoding=)([\"'])[^\"']*\2")


@dataclass(frozen=True)
class Defused:
    """The document to parse. ``transcoded``: it was re-encoded to UTF-8 (its declaration says
    so; the caller must then say charset=utf-8 instead of the server's charset)."""

    content: bytes
    removed: int = 0
    transcoded: bool = False
    #: Character references replaced because no character has their number.
    replaced: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.replaced)


def _doctype_end(text: str, start: int) -> tuple[int, bool]:
    """End (exclusive) of the DOCTYPE declaration at ``start`` and whether it has an internal
    subset. Quoted strings, comments and processing instructions may hold ``>`` and ``]``."""
    i, n, subset, depth = start + len("<!DOCTYPE"), len(text), False, 0
    while i < n:
        c = text[i]
        if c in "\"'":
            close = text.find(c, i + 1)
            i = n if close < 0 else close + 1
            continue
        if text.startswith("<!--", i):
            close = text.find("-->", i + 4)
            i = n if close < 0 else close + 3
            continue
        if text.startswith("<?", i):
            close = text.find("?>", i + 2)
            i = n if close < 0 else close + 2
            continue
        if c == "[":
            subset, depth = True, depth + 1
        elif c == "]":
            depth = max(0, depth - 1)
        elif c == ">" and depth == 0:
            return i + 1, subset
        i += 1
    return n, subset  # never closed: everything after it belongs to the declaration


def _strip(text: str) -> tuple[str, int]:
    """``text`` without DOCTYPE internal subsets and entity declarations. Declarations are
    removed everywhere, not only before the root element: where feedparser's prolog ends
    depends on its own encoding conversion, and outside a prolog they are not text anyway."""
    removed = 0
    pieces: list[str] = []
    pos = 0
    while (start := text.find("<!DOCTYPE", pos)) >= 0:
        end, subset = _doctype_end(text, start)
        pieces.append(text[pos:start])
        if subset:
            removed += 1
        else:
            pieces.append(text[start:end])
        pos = end
    pieces.append(text[pos:])
    text, found = _ENTITY_DECL.subn("", "".join(pieces))
    return text, removed + found


def _fix_char_refs(text: str) -> tuple[str, int]:
    """``text`` with references to no character (beyond U+10FFFF, surrogates) replaced."""
    replaced = 0

    def fix(match: re.Match[str]) -> str:
        nonlocal replaced
        ref = match.group(1)
        digits, base = (ref[1:], 16) if ref[0] in "xX" else (ref, 10)
        digits = digits.lstrip("0") or "0"
        # Over 7 digits is beyond U+10FFFF in either base (and int() refuses 4,300 digits).
        if len(digits) <= 7:
            value = int(digits, base)
            if value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
                return match.group(0)
        replaced += 1
        return _REPLACEMENT

    return _CHAR_REF.sub(fix, text), replaced


def defuse(content: bytes) -> Defused:
    """``content`` with no entity declaration left for an XML parser to expand and no
    character reference that names no character.

    Documents without ``<!ENTITY`` and ``&#`` (in any encoding) come back unchanged, decided
    by a few substring searches; the others cost a pass of two regular expressions.
    """
    for declaration, encoding in _PATTERNS:
        has_declaration = declaration in content
        if not has_declaration and "&#".encode(encoding) not in content:
            continue
        data = content
        bom = _BOMS.get(encoding)
        if bom is not None and data.startswith(bom):
            data = data[len(bom):]
        text, removed = data.decode(encoding, errors="replace"), 0
        if has_declaration:
            text, removed = _strip(text)
        text, replaced = _fix_char_refs(text)
        if not (removed or replaced):
            continue
        if encoding == "latin-1":
            return Defused(text.encode("latin-1"), removed, replaced=replaced)
        text = _XML_DECL_ENCODING.sub(r"\1\2utf-8\2", text, count=1)
        return Defused(text.encode("utf-8"), removed, transcoded=True, replaced=replaced)
    return Defused(content)
