"""Pure text normalization for rule matching, with offsets back into the original text.

The rule matcher runs one multi-pattern pass over a *normalized* copy of an article, but
analysts must see evidence in the text they were sent. So normalization here keeps a map from
every normalized position to the original characters it came from, and ``NormalizedText.span``
turns a match in the normalized text into ``(start, end)`` offsets of the original.

What normalization does, and why:

- case folding (``str.casefold``: ``ß`` -> ``ss``, Greek final sigma -> sigma), so terms are
  written in lower case once;
- diacritics are stripped from Latin and Greek letters (``Marschflugkörper`` ->
  ``marschflugkorper``, ``Crimée`` -> ``crimee``), plus the letters Unicode does not decompose
  (``ł``, ``ø``, ``đ``, ``æ``, ``œ``), because news sites and transliterations drop them
  inconsistently. Cyrillic keeps its diacritics (``й`` is not ``и``, ``ї`` is not ``і``)
  except ``ё`` -> ``е``, which Russian writes either way;
- every apostrophe variant (’ ʼ ‘ ` ´ ′) becomes ``'`` (Ukrainian writes ``об'єкт`` with any of
  them; French elides ``l'Ukraine``);
- hyphens become spaces and runs of whitespace one space, so ``Storm-Shadow-Marschflugkörper``,
  ``Storm Shadow Marschflugkörper`` and ``Storm\\nShadow`` all read ``storm shadow ...``;
- soft hyphens, zero-width characters and combining marks are dropped, and so is the katakana
  middle dot, which Japanese writes between the parts of a foreign name or not
  (``ストーム・シャドー`` and ``ストームシャドー``);
- full-width Latin letters and digits, common in Japanese and Chinese news (``ＮＡＴＯ``), read
  as their ASCII forms.

Scripts written without spaces between words (Chinese, Japanese kana and kanji, Thai, Lao,
Khmer, Myanmar) have no word boundaries to find: ``is_word_char`` is false for their characters,
so a rule term in them matches anywhere in a run of text (``英国がストームシャドーを供与``), and
a Latin term next to them (``米国はATACMSを``) still starts and ends a word.

Everything here is pure (no I/O) and cheap on the common path: one ``str.translate`` plus one
regex scan; the per-character offset map is only built where a character changed length.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "NormalizedText",
    "Token",
    "is_unspaced",
    "is_word_char",
    "normalize",
    "normalize_term",
    "sentence_starts",
    "spaced_words",
    "tokenize",
    "word_counts",
    "word_starts",
]

_APOSTROPHES = "'’ʼ‘`´′ʹꞌ＇"
# Hyphen-minus, hyphen, non-breaking hyphen, figure dash, minus sign: joiners inside words and
# compounds. En and em dashes are punctuation between words and stay as they are.
_HYPHENS = "-‐‑‒−"
# Invisible characters that break terms apart without being visible to the reader.
_DELETED = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
# The katakana middle dot (full and half width): between the parts of a foreign name it is
# written or not, so it is dropped like a soft hyphen.
_NAME_DOTS = "\u30fb\uff65"
# Full-width ASCII letters, digits and punctuation (U+FF01-U+FF5E), as East Asian text writes
# them: folded to ASCII (NFKC), one character for one.
_FULL_WIDTH = range(0xFF01, 0xFF5F)
# Scripts written without spaces between words, as code point ranges: Thai and Lao, Myanmar,
# Khmer, the CJK iteration marks, hiragana, katakana, CJK ideographs (and extensions and
# compatibility forms), half-width katakana.
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
    (0x3005, 0x3007),
    (0x3040, 0x30FF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
    (0x20000, 0x3FFFF),
)
# Letters that NFD does not decompose but that readers treat as their base letter.
_EXTRA_FOLD = {"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "ŧ": "t"}


def _fold_char(ch: str) -> str:
    """The normalized form of one character (possibly empty or longer than one)."""
    if ch in _DELETED or ch in _NAME_DOTS:
        return ""
    if ord(ch) in _FULL_WIDTH:
        ch = unicodedata.normalize("NFKC", ch)
    if ch in _APOSTROPHES:
        return "'"
    if ch in _HYPHENS or ch.isspace():
        return " "
    if unicodedata.combining(ch):
        return ""
    folded = ch.casefold()
    out: list[str] = []
    for c in folded:
        if c in _EXTRA_FOLD:
            out.append(_EXTRA_FOLD[c])
            continue
        if c == "ё":
            out.append("е")
            continue
        decomposed = unicodedata.normalize("NFD", c)
        base = decomposed[0]
        name = unicodedata.name(base, "")
        if len(decomposed) > 1 and (name.startswith("LATIN") or name.startswith("GREEK")):
            out.append(base)
        else:
            out.append(unicodedata.normalize("NFC", c))
    return "".join(out)


def _build_tables() -> tuple[dict[int, str], dict[str, str]]:
    """The folding of characters that ``str.lower`` leaves unchanged, split by output length.

    ``normalize`` lower-cases with the fast built-in first, then fixes what is left (accents,
    ``ß``, ``ё``, apostrophes, hyphens, odd whitespace) with one regex scan. Only code points
    up to U+3000 (Latin, Greek, Cyrillic, punctuation, the ideographic space), full-width ASCII and
    a few invisible ones need folding.
    """
    one_to_one: dict[int, str] = {}
    special: dict[str, str] = {}
    codepoints = [*range(0x3001), *(ord(c) for c in _DELETED + _NAME_DOTS), *_FULL_WIDTH]
    for cp in codepoints:
        ch = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or ch.lower() != ch:
            continue
        folded = _fold_char(ch)
        if folded == ch:
            continue
        if len(folded) == 1:
            one_to_one[cp] = folded
        else:
            special[ch] = folded
    return one_to_one, special


_ONE_TO_ONE, _SPECIAL = _build_tables()


_FOLD_TABLE: dict[int, str] = {**_ONE_TO_ONE, **{ord(k): v for k, v in _SPECIAL.items()}}
# One character class, so that the regex engine scans for it at C speed: runs of characters
# that lower() left but that still need folding. Plain spaces are not in it (they are most of
# the matches one would get); runs of spaces are collapsed in a second, literal-led scan.
_FIX_RE = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_FOLD_TABLE)) + "]+")
_SPACE_RUN_RE = re.compile("  +")


@dataclass(frozen=True, slots=True)
class _Segments:
    """A piecewise map from normalized positions to original offsets.

    Segment ``i`` covers normalized ``[norm_start[i], norm_start[i] + norm_len[i])`` and original
    ``[orig_start[i], orig_start[i] + orig_len[i])``. Equal lengths map position by position;
    unequal ones (``ß`` -> ``ss``, a whitespace run -> one space, a deleted soft hyphen) map every
    position inside to the whole original piece.
    """

    norm_start: list[int] = field(default_factory=list)
    norm_len: list[int] = field(default_factory=list)
    orig_start: list[int] = field(default_factory=list)
    orig_len: list[int] = field(default_factory=list)

    def add(self, norm_start: int, norm_len: int, orig_start: int, orig_len: int) -> None:
        self.norm_start.append(norm_start)
        self.norm_len.append(norm_len)
        self.orig_start.append(orig_start)
        self.orig_len.append(orig_len)

    def _find(self, pos: int) -> int:
        # Deletions are zero-length segments sharing a start with the segment after them;
        # bisect_right picks the last segment starting at or before pos, the non-empty one.
        return bisect_right(self.norm_start, pos) - 1

    def start_of(self, pos: int) -> int:
        i = self._find(pos)
        if self.norm_len[i] == self.orig_len[i]:
            return self.orig_start[i] + (pos - self.norm_start[i])
        return self.orig_start[i]

    def starts_of(self, positions: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """``start_of`` of each position, in numpy."""
        norm_start = np.array(self.norm_start, dtype=np.intp)
        i = np.searchsorted(norm_start, positions, side="right") - 1
        orig_start = np.array(self.orig_start, dtype=np.intp)[i]
        same = np.array(self.norm_len, dtype=np.intp)[i] == np.array(self.orig_len,
                                                                      dtype=np.intp)[i]
        return np.where(same, orig_start + (positions - norm_start[i]), orig_start)

    def end_of(self, pos: int) -> int:
        """Original end offset (exclusive) of the normalized character at ``pos``."""
        i = self._find(pos)
        if self.norm_len[i] == self.orig_len[i]:
            return self.orig_start[i] + (pos - self.norm_start[i]) + 1
        return self.orig_start[i] + self.orig_len[i]


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """A normalized copy of ``original`` that can map its positions back.

    ``text`` is what rules match against. ``span(start, end)`` converts a half-open range of
    ``text`` into a half-open range of ``original`` covering exactly the characters it came
    from (trailing combining marks and soft hyphens of the last character included).
    """

    original: str
    text: str
    #: Normalized-before-space-collapsing -> original; None where positions are unchanged.
    fold_map: _Segments | None = None
    #: Normalized -> normalized-before-space-collapsing; None where no run was collapsed.
    space_map: _Segments | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"bad normalized span {start}:{end} of {len(self.text)}")
        o_start, o_end = start, end
        if self.space_map is not None:
            o_start, o_end = self.space_map.start_of(o_start), self.space_map.end_of(o_end - 1)
        if self.fold_map is not None:
            o_start, o_end = self.fold_map.start_of(o_start), self.fold_map.end_of(o_end - 1)
        # A decomposed accent or a soft hyphen after the last character belongs to the span.
        original = self.original
        while o_end < len(original) and (
            unicodedata.combining(original[o_end]) or original[o_end] in _DELETED
        ):
            o_end += 1
        return o_start, o_end

    def original_offset(self, pos: int) -> int:
        """The original offset of the normalized character at ``pos`` (or the end)."""
        if pos >= len(self.text):
            return len(self.original)
        # span(pos, pos + 1)[0] without the end, which nothing here needs.
        if self.space_map is not None:
            pos = self.space_map.start_of(pos)
        if self.fold_map is not None:
            pos = self.fold_map.start_of(pos)
        return pos

    def original_offsets(self, positions: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """``original_offset`` of each position, in numpy."""
        inside = positions < len(self.text)
        pos = np.where(inside, positions, 0) if len(self.text) else positions
        if self.space_map is not None:
            pos = self.space_map.starts_of(pos)
        if self.fold_map is not None:
            pos = self.fold_map.starts_of(pos)
        return np.where(inside, pos, len(self.original))


# The characters that fold to none or to more than one, and the one-for-one folding of the
# Basic Multilingual Plane as a code point table (identity elsewhere).
_SPECIAL_RE = re.compile("[" + "".join(re.escape(c) for c in sorted(_SPECIAL)) + "]")
_FOLD_BMP = np.arange(0x10000, dtype=np.uint32)
for _cp, _out in _ONE_TO_ONE.items():
    _FOLD_BMP[_cp] = ord(_out)


def _fold(lowered: str) -> tuple[str, _Segments | None]:
    """Apply the character folding to lower-cased text; a map only if some length changed."""
    if _SPECIAL_RE.search(lowered) is None:
        # Every character folds to one: a table look-up in numpy, the same as translating
        # each run of _FIX_RE below (lone surrogates pass through as themselves).
        codes = np.frombuffer(lowered.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        if not len(codes) or int(codes.max()) < 0x10000:
            return _FOLD_BMP[codes].tobytes().decode("utf-32-le", "surrogatepass"), None
    return _fold_runs(lowered)


def _fold_runs(lowered: str) -> tuple[str, _Segments | None]:
    """``_fold`` run by run of characters to fold, keeping the map where lengths change."""
    pieces: list[str] = []
    segments: _Segments | None = None
    pos = 0  # offset in ``lowered``, which has the original's offsets
    norm_pos = 0
    ident_orig = ident_norm = 0  # start of the current position-by-position stretch
    for match in _FIX_RE.finditer(lowered):
        m_start, m_end = match.span()
        run = match.group()
        folded = run.translate(_FOLD_TABLE)
        pieces.append(lowered[pos:m_start])
        norm_pos += m_start - pos
        pos = m_end
        if _SPECIAL_RE.search(run) is None:  # then every character folds to one
            pieces.append(folded)
            norm_pos += len(folded)
            continue
        if segments is None:
            segments = _Segments()
        for offset, ch in enumerate(run):
            out = _FOLD_TABLE.get(ord(ch), ch)
            if len(out) == 1 and ch not in _SPECIAL:
                pieces.append(out)
                norm_pos += 1
                continue
            orig = m_start + offset
            if norm_pos > ident_norm:
                segments.add(ident_norm, norm_pos - ident_norm, ident_orig, orig - ident_orig)
            segments.add(norm_pos, len(out), orig, 1)
            pieces.append(out)
            norm_pos += len(out)
            ident_orig = orig + 1
            ident_norm = norm_pos
    pieces.append(lowered[pos:])
    norm_pos += len(lowered) - pos
    if segments is not None and norm_pos > ident_norm:
        segments.add(ident_norm, norm_pos - ident_norm, ident_orig, len(lowered) - ident_orig)
    return "".join(pieces), segments


def _collapse_spaces(folded: str) -> tuple[str, _Segments | None]:
    if "  " not in folded:
        return folded, None
    segments = _Segments()
    pieces: list[str] = []
    pos = norm_pos = 0
    for match in _SPACE_RUN_RE.finditer(folded):
        m_start, m_end = match.span()
        if m_start > pos:
            segments.add(norm_pos, m_start - pos, pos, m_start - pos)
            pieces.append(folded[pos:m_start])
            norm_pos += m_start - pos
        segments.add(norm_pos, 1, m_start, m_end - m_start)
        pieces.append(" ")
        norm_pos += 1
        pos = m_end
    if pos < len(folded):
        segments.add(norm_pos, len(folded) - pos, pos, len(folded) - pos)
        pieces.append(folded[pos:])
    return "".join(pieces), segments


def normalize(text: str) -> NormalizedText:
    """Normalize ``text`` for matching (see the module docstring) and keep the offset map."""
    # "İ".lower() is the only lower-casing that changes length; dotless it folds the same.
    lowered = (text.replace("İ", "I") if "İ" in text else text).lower()
    folded, fold_map = _fold(lowered)
    collapsed, space_map = _collapse_spaces(folded)
    return NormalizedText(original=text, text=collapsed, fold_map=fold_map, space_map=space_map)


def normalize_term(term: str) -> str:
    """A rule term in the same form as ``normalize(...).text``, without outer spaces."""
    return normalize(term).text.strip()


def is_unspaced(ch: str) -> bool:
    """Whether ``ch`` belongs to a script written without spaces between words (CJK, kana,
    Thai...), where a word boundary can fall between any two characters."""
    cp = ord(ch)
    return cp >= 0x0E00 and any(low <= cp <= high for low, high in _UNSPACED_RANGES)


def is_word_char(ch: str) -> bool:
    """Letters and digits of spaced scripts make words; everything else (space, ``'``,
    punctuation, and every character of a script without spaces) divides."""
    return ch.isalnum() and not (ch >= "\u0e00" and is_unspaced(ch))


@dataclass(frozen=True, slots=True)
class Token:
    """A word of the normalized text, with its offsets in the original text."""

    text: str
    start: int
    end: int


# Words for distances: runs of letters and digits of spaced scripts; in Japanese a run of
# katakana (a loanword) or of hiragana (particles, endings); in Chinese and Japanese kanji two
# characters (the commonest word length), so that "N words" means about as much there.
_KATAKANA = "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HIRAGANA = "\u3040-\u309f"
_HAN = "\u3005-\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_WORD_RE = re.compile(
    rf"[^\W_{_KATAKANA}{_HIRAGANA}{_HAN}]+|[{_KATAKANA}]+|[{_HIRAGANA}]+|[{_HAN}]{{1,2}}"
)
# The same words in a text without kana or Han, the common case, found faster.
_SPACED_WORD_RE = re.compile(r"[^\W_]+")


# Characters from the CJK full stop up: a regex scan finds one far faster than max(text).
_WIDE_RE = re.compile("[\u3002-\U0010ffff]")


def _word_re(text: str) -> re.Pattern[str]:
    return _WORD_RE if _WIDE_RE.search(text) else _SPACED_WORD_RE


def tokenize(text: str | NormalizedText) -> list[Token]:
    """Words (runs of letters and digits) of the normalized text, with original offsets.

    ``original[token.start:token.end]`` is the word as written; ``token.text`` its normalized
    form. Hyphenated compounds come out as separate words (``storm``, ``shadow``).
    """
    norm = text if isinstance(text, NormalizedText) else normalize(text)
    tokens = []
    for match in _word_re(norm.text).finditer(norm.text):
        start, end = norm.span(match.start(), match.end())
        tokens.append(Token(match.group(), start, end))
    return tokens


def word_starts(normalized: str) -> list[int]:
    """Start positions of the words of a normalized text, for word-distance lookups."""
    return [m.start() for m in _word_re(normalized).finditer(normalized)]


# Whether each code point below U+3002 is a word character of _SPACED_WORD_RE (taken from the
# pattern itself, so the two cannot disagree): a text without characters from U+3002 up is
# split into words by that pattern alone.
_SPACED_WORD_CHAR = np.array(
    [_SPACED_WORD_RE.fullmatch(chr(cp)) is not None for cp in range(0x3002)], dtype=np.int8
)


# Each code point below U+0E00 (where no script without spaces starts) as ``spaced_words``
# writes it: itself if ``is_word_char``, else a space.
_BELOW_UNSPACED = 0x0E00
_WORD_OR_SPACE = np.array(
    [cp if is_word_char(chr(cp)) else 0x20 for cp in range(_BELOW_UNSPACED)], dtype=np.uint32
)


def spaced_words(text: str) -> str | None:
    """``text`` with every character that is not ``is_word_char`` written as a space, and one
    space added at each end: ``" " + ... + " "``, so position ``i`` of ``text`` is ``i + 1``
    here. A word of ``text`` is then a run without spaces, and a word boundary is a space on
    either side, which a plain string search can require. None when ``text`` has a character
    from U+0E00 up (where scripts without spaces start: a boundary there has no character)."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if len(codes) and int(codes.max()) >= _BELOW_UNSPACED:
        return None
    return " " + _WORD_OR_SPACE[codes].tobytes().decode("utf-32-le") + " "


def word_counts(normalized: str) -> npt.NDArray[np.int64] | None:
    """For each position of ``normalized``, how many of its ``word_starts`` are at or before
    it: ``bisect_right(word_starts(text), pos) == word_counts(text)[pos]``, computed in numpy
    instead of one Python step per word. None for a text with characters from U+3002 up
    (Chinese and Japanese words are cut by script; ``word_starts`` handles them)."""
    if _WIDE_RE.search(normalized):
        return None
    word = _SPACED_WORD_CHAR[np.frombuffer(normalized.encode("utf-32-le"), dtype=np.uint32)]
    starts = word.copy()
    starts[1:] &= 1 - word[:-1]
    return np.cumsum(starts, dtype=np.int64)


# Sentence ends: terminal punctuation (with closing quotes/brackets) then space, a line break,
# or the full stops of Chinese and Japanese, which need no space after them.
#
# _SENTENCE_END_RE matches what r"[.!?…]+[\"'»”’“)\]]*\s+|\s*\n\s*" matches, at the same places
# (tests/pipeline/detection/test_text.py compares the two), written to start with one character
# class: the regex engine then skips to a stop or a white space in C instead of trying both
# alternatives at every character (half the time of the whole split).
_SENTENCE_END_RE = re.compile(
    r"[.!?…\s](?:(?<=[.!?…])[.!?…]*[\"'»”’“)\]]*\s+|(?<=\n)\s*|(?<=\s)\s*\n\s*)"
)
_SENTENCE_END_CJK_RE = re.compile(
    r"[.!?…]+[\"'»”’“)\]]*\s+|\s*\n\s*|[。！？｡]+[」』”’）)\]]*\s*"
)
# Abbreviations after which a full stop does not end a sentence (lower-cased, without the dot).
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "gen",
        "sen",
        "rep",
        "st",
        "lt",
        "col",
        "maj",
        "capt",
        "sgt",
        "gov",
        "pres",
        "nr",
        "vs",
        "ca",
        "bzw",
        "etc",
        "jr",
        "sr",
        "z.b",
        "u.a",
        "d.h",
        "u.s",
        "u.k",
        "e.g",
        "i.e",
        "gen.-lt",
        "ggf",
        "vgl",
        "inkl",
        "ul",
        "ст",
        "г",
        "гг",
        "т.е",
        "т.д",
        "др",
        "пр",
        "им",
        "ген",
        "мин",
        "м",
        "ім",
        "ін",
        "вул",
        "p",
        "mln",
        "mld",
        "tys",
        "ok",
        "np",
        "tj",
        "m.in",
        "ds",
        "mme",
        "mlle",
        "m",
        "art",
        "sig",
        "dott",
        "av",
        "avv",
        "sra",
        "sr",
        "dña",
    ]
)


def is_abbreviation(word: str) -> bool:
    """Whether a full stop after ``word`` (the text from the last white space before the
    stop) does not end a sentence: a known abbreviation, a single letter (``J. Smith``) or
    dotted initials (``U.S``, ``z.B``)."""
    word = word.lstrip("(\"'«„“").lower()
    return (
        word in _ABBREVIATIONS
        or (len(word) == 1 and word.isalpha())
        or (len(word) >= 2 and word[-2] == "." and word[-1].isalpha())
    )


@functools.cache
def char_classes() -> bytes:
    """Python's ``isspace``, ``isupper``, ``isdigit``, ``isalpha`` and ``islower`` of every
    code point of the Basic Multilingual Plane, as bits 1, 2, 4, 8 and 16 of one byte each:
    the compiled sentence splitter (native/src/lib.rs) reads them here, so that it uses this
    Python's character properties, not Rust's (~40 ms, once per process)."""
    table = bytearray(0x10000)
    for cp in range(0x10000):
        ch = chr(cp)
        table[cp] = (ch.isspace() | ch.isupper() << 1 | ch.isdigit() << 2 | ch.isalpha() << 3
                     | ch.islower() << 4)
    return bytes(table)


def sentence_starts(original: str) -> list[int]:
    """Offsets in ``original`` where sentences start (always begins with 0).

    A sentence ends at a line break, or at ``.``, ``!``, ``?`` or ``…`` followed by space and a
    capital letter (any letter in a script without case), digit or opening quote, unless the
    word before the full stop is a known abbreviation or a single letter (``U.S.``,
    ``J. Smith``). Good enough for "same sentence" rules in news prose; it is not a linguistic
    sentence splitter.
    """
    starts = [0]
    # The full stops of Chinese and Japanese (U+3002 and up) only where the text has them.
    pattern = _SENTENCE_END_CJK_RE if _WIDE_RE.search(original) else _SENTENCE_END_RE
    for match in pattern.finditer(original):
        end = match.end()
        if end >= len(original):
            break
        token = match.group()
        if "\n" not in token:
            nxt = original[end]
            # Caseless scripts (Arabic, Indic, CJK) have no capital to wait for.
            starts_sentence = (
                nxt.isupper() or nxt.isdigit() or (nxt.isalpha() and not nxt.islower())
            )
            if not (starts_sentence or nxt in "\"'«„“‘([「『（"):
                continue
            if token[0] == ".":
                word_start = match.start()
                while word_start > 0 and not original[word_start - 1].isspace():
                    word_start -= 1
                if is_abbreviation(original[word_start : match.start()]):
                    continue
        starts.append(end)
    return starts
