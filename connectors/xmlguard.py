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

Bytes that are invalid in the document's encoding (:func:`repair_encoding`): feedparser tries
the declared encoding, then UTF-8, then windows-1252, each for the *whole* document, so one
invalid byte in a UTF-8 feed made every non-ASCII letter of it mojibake (``für`` became
``fÃ¼r``, ``ВОЙСКА`` became ``Đ’ĐžĐ™...``), and a charset name such as ``undefined`` made it
raise. Before feedparser sees the document, it is read in its declared encoding (byte order
mark, then HTTP charset, then XML declaration), or as UTF-8 when that fails and the bytes are
mostly UTF-8, with each invalid sequence replaced by U+FFFD, and handed on as UTF-8 with its
declaration rewritten. A document without valid multi-byte UTF-8 and without a usable declared
encoding is single-byte text in an undeclared encoding: it is left to feedparser's fallback
(and to rss.py's Cyrillic guess). Charset names that are no text encoding are removed.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from newsmon.connectors.fields import text_codec

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
_XML_DECL_ENCODING = re.compile(r"^(\s*<\?xml[^>]*?\sencoding\s*=\s*)([\"'])[^\"']*\2")
#: The encoding an ASCII-compatible document declares (after an optional UTF-8 BOM).
_XML_DECL_NAME = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]{0,200}?\sencoding\s*=\s*([\"'])([^\"'>]{0,100})\1")
_XML_DECL_NAME_ATTR = re.compile(
    rb"^((?:\xef\xbb\xbf)?\s*<\?xml[^>]{0,200}?)\sencoding\s*=\s*([\"'])[^\"'>]{0,100}\2")
#: BOMs and the codecs that read them (and drop them); UTF-32 before UTF-16, whose LE BOM is
#: a prefix of UTF-32's.
_BOM_CODECS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_UTF8 = frozenset({"utf-8", "utf-8-sig"})


def _wide(content: bytes) -> str | None:
    """UTF-32 or UTF-16 without a BOM, told by the zero bytes around the first character
    (XML 1.0 appendix F); such a document is mostly valid UTF-8 byte for byte, NULs and all."""
    head = content[:4]
    if len(head) < 4 or 0 not in head:
        return None
    if head[1:] == b"\0\0\0" and head[0]:
        return "utf-32-le"
    if head[:3] == b"\0\0\0" and head[3]:
        return "utf-32-be"
    if head[1] == head[3] == 0 and head[0] and head[2]:
        return "utf-16-le"
    if head[0] == head[2] == 0 and head[1] and head[3]:
        return "utf-16-be"
    return None
#: A valid UTF-8 sequence of two to four bytes (RFC 3629: no overlongs, no surrogates).
_UTF8_MULTI = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
#: Invalid bytes that a document saying UTF-8 (or nothing) may have and still be read as
#: UTF-8 without any valid multi-byte sequence: mislabelled single-byte text has one per
#: letter that is not ASCII, a damaged UTF-8 file a few per damage.
FEW_INVALID_BYTES = 8


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
        return Defused(as_utf8(text), removed, transcoded=True, replaced=replaced)
    return Defused(content)


def as_utf8(text: str) -> bytes:
    """``text`` (a decoded document) as UTF-8, its XML declaration saying so."""
    return _XML_DECL_ENCODING.sub(r"\1\2utf-8\2", text, count=1).encode("utf-8")


@dataclass(frozen=True)
class Repaired:
    """The document to hand feedparser. ``transcoded``: it is UTF-8 now, read as
    ``encoding`` (the caller must then say charset=utf-8); ``replaced``: invalid byte
    sequences that became U+FFFD; ``dropped``: charset names that are no text encoding,
    removed from the declaration (the caller removes the HTTP one)."""

    content: bytes
    encoding: str | None = None
    transcoded: bool = False
    replaced: int = 0
    dropped: tuple[str, ...] = ()


def _decodes(content: bytes, encoding: str, *, as_markup: bool = False) -> bool:
    """``content`` decodes without error in ``encoding``; ``as_markup``: into text that
    starts like markup (a UTF-8 document "declared" as utf-16 or cp037 decodes too, into
    nonsense)."""
    try:
        text = content.decode(encoding)
    except UnicodeError:
        return False
    return not as_markup or text.lstrip("\ufeff \t\r\n").startswith("<")


def _utf8_counts(content: bytes) -> tuple[int, int, int]:
    """(valid multi-byte UTF-8 sequences, runs of other non-ASCII bytes, bytes in those
    runs). UTF-8 with some damage has many of the first and few of the others; single-byte
    text the reverse (in windows-1251 or koi8-r a valid pair arises only by chance, from an
    upper-case letter before one of a few punctuation marks or Ukrainian letters)."""
    good = len(_UTF8_MULTI.findall(content))
    runs = _HIGH_RUN.findall(_UTF8_MULTI.sub(b"", content))
    return good, len(runs), sum(map(len, runs))


def _is_damaged_utf8(content: bytes, declared: str | None) -> bool:
    """Whether a document that is not valid UTF-8 is UTF-8 with invalid bytes rather than
    text in some other encoding. A document that says UTF-8, or nothing (XML's default is
    UTF-8), is when at least a fifth of its non-ASCII pieces are valid UTF-8 or only a few
    bytes are invalid (one bad byte in an English feed; a word or two of single-byte Cyrillic
    is more); one that names another encoding only when nearly all are (a server's default
    charset on a UTF-8 file)."""
    good, bad, bad_bytes = _utf8_counts(content)
    if declared is None or declared in _UTF8:
        return bad_bytes <= FEW_INVALID_BYTES or good * 4 >= bad
    return good >= 4 * bad


def repair_encoding(content: bytes, http_charset: str | None) -> Repaired:
    """``content`` readable by feedparser without losing any good text (see the module
    notes). ``http_charset`` is the raw charset parameter of the Content-Type, if any.

    Unchanged (the common case, decided by one strict decode) when the document decodes
    in the encoding it declares, or as UTF-8 when it declares none that works, and names no
    bogus charset. Otherwise transcoded to UTF-8 with replacement, or, for single-byte text
    that does not say its encoding, only cleaned of bogus names.
    """
    bom = next((name for mark, name in _BOM_CODECS if content.startswith(mark)), None)
    match = _XML_DECL_NAME.match(content)
    decl_name = match.group(2).decode("latin-1") if match else None
    http, decl = text_codec(http_charset), text_codec(decl_name)
    dropped = tuple(n for n, codec in ((http_charset, http), (decl_name, decl))
                    if n is not None and codec is None)
    declared = bom or _wide(content) or http or decl
    if declared is not None and _decodes(content, declared, as_markup=declared not in _UTF8):
        encoding, strict = declared, True
    elif _decodes(content, "utf-8"):
        encoding, strict = "utf-8", True
    else:
        strict = False
        if bom == "utf-8-sig" or (bom is None and _is_damaged_utf8(content, declared)):
            encoding = bom or "utf-8"
        elif declared is not None and declared not in _UTF8:
            encoding = declared
        else:
            # Single-byte text in an encoding it does not name: feedparser's windows-1252
            # fallback (and rss.py's Cyrillic guess) reads it better than U+FFFD would.
            if not dropped:
                return Repaired(content)
            return Repaired(_XML_DECL_NAME_ATTR.sub(rb"\1", content, count=1), dropped=dropped)
    if strict and not dropped:
        return Repaired(content)
    text = content.decode(encoding, errors="replace")
    replaced = 0
    if not strict:
        already = content.count(b"\xef\xbf\xbd") if encoding in _UTF8 else 0
        replaced = max(1, text.count("\ufffd") - already)
    return Repaired(as_utf8(text), encoding, transcoded=True, replaced=replaced, dropped=dropped)
