"""Matching normalization: what it folds, and that every span maps back to the original."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from newsmon.pipeline.detection.text import (
    _SENTENCE_END_RE,
    _fold,
    _fold_runs,
    is_unspaced,
    is_word_char,
    normalize,
    normalize_term,
    sentence_starts,
    spaced_words,
    tokenize,
    word_counts,
    word_starts,
)


def test_folds_case_diacritics_and_german_sharp_s() -> None:
    assert normalize("Marschflugkörper STRASSE Straße Crimée Łódź").text == (
        "marschflugkorper strasse strasse crimee lodz"
    )


def test_cyrillic_keeps_its_letters_except_yo() -> None:
    # ё is written either way in Russian; й and ї are different letters and must stay.
    assert normalize("Ракеты «Орешник» ещё ЁЛКА").text == "ракеты «орешник» еще елка"
    assert normalize("Київ, військовий").text == "київ, військовий"


def test_apostrophe_variants_become_one() -> None:
    for apostrophe in "'’ʼ‘`´":
        assert normalize(f"об{apostrophe}єкт l{apostrophe}Ukraine").text == "об'єкт l'ukraine"


def test_hyphenated_compounds_read_as_words() -> None:
    assert normalize("Storm-Shadow-Marschflugkörper").text == "storm shadow marschflugkorper"
    assert normalize("SCALP‑EG").text == "scalp eg"  # non-breaking hyphen


def test_whitespace_runs_and_invisible_characters() -> None:
    assert normalize("Storm \n\t Shadow").text == "storm shadow"
    assert normalize("Marsch\u00adflug\u200bkörper").text == "marschflugkorper"


def test_decomposed_accents_are_dropped() -> None:
    assert normalize("Crime\u0301e").text == "crimee"


def test_span_maps_to_original_characters() -> None:
    original = "Die  Straße — Storm-Shadow\u00ad-Raketen"
    norm = normalize(original)
    for word in ("strasse", "storm shadow", "raketen"):
        start = norm.text.index(word)
        o_start, o_end = norm.span(start, start + len(word))
        assert normalize(original[o_start:o_end]).text == word
    start = norm.text.index("strasse")
    assert original[slice(*norm.span(start, start + 7))] == "Straße"


def test_normalize_term_strips_outer_space() -> None:
    assert normalize_term("  Boots-on-the-Ground ") == "boots on the ground"


def test_tokens_carry_original_offsets() -> None:
    text = "Французские военные — в Україні’s"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == ["французские", "военные", "в", "україні", "s"]
    for token in tokens:
        assert normalize(text[token.start : token.end]).text == token.text


_ALPHABET = st.sampled_from(
    [*"abcXYZ äöüßÉéèçłøœæ ёЁйЙїЇ ’'`-‐\u00ad\u200b\n\t  .,!?ΣςΆ", "e\u0301", "İ"]
)


@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_every_normalized_word_maps_back_to_itself(original: str) -> None:
    norm = normalize(original)
    for match in re.finditer(r"[^\W_]+", norm.text):
        start, end = norm.span(match.start(), match.end())
        assert 0 <= start < end <= len(original)
        assert normalize(original[start:end]).text == match.group()


@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_normalization_is_idempotent(original: str) -> None:
    once = normalize(original).text
    assert normalize(once).text == once


def test_sentences_split_on_stops_and_line_breaks_not_abbreviations() -> None:
    text = (
        "U.S. troops arrived. Dr. Smith said so! Neue Zeile\nZweite Zeile. z.B. nicht hier. "
        "Последнее предложение."
    )
    starts = sentence_starts(text)
    pieces = [text[a:b].strip() for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    assert pieces == [
        "U.S. troops arrived.",
        "Dr. Smith said so!",
        "Neue Zeile",
        "Zweite Zeile. z.B. nicht hier.",
        "Последнее предложение.",
    ]


def test_sentences_in_caseless_scripts() -> None:
    text = "ఉక్రెయిన్కు సాయం. రష్యా భూభాగంపై."
    assert len(sentence_starts(text)) == 2


# --- scripts without spaces ----------------------------------------------------------------


def test_full_width_latin_and_the_katakana_middle_dot_fold() -> None:
    text = "ＮＡＴＯはストーム・シャドーを"
    norm = normalize(text)
    assert norm.text == "natoはストームシャドーを"
    start = norm.text.index("ストームシャドー")
    o_start, o_end = norm.span(start, start + len("ストームシャドー"))
    assert text[o_start:o_end] == "ストーム・シャドー"
    assert normalize("ＡＴＡＣＭＳ\u3000供与").text == "atacms 供与"


def test_unspaced_scripts_have_no_word_characters() -> None:
    assert is_word_char("a") and is_word_char("ж") and is_word_char("7")
    for ch in "英がストームสวัสดี":
        assert is_unspaced(ch) and not is_word_char(ch), ch
    assert not is_unspaced("a") and not is_unspaced("ж") and not is_unspaced("가")


def test_words_for_distances_in_japanese_and_chinese() -> None:
    # Katakana and hiragana runs are words; Han characters count two to a word.
    assert [t.text for t in tokenize("英国がストームシャドーを供与")] == [
        "英国", "が", "ストームシャドー", "を", "供与"]
    assert [t.text for t in tokenize("英国向乌克兰提供风暴阴影导弹")] == [
        "英国", "向乌", "克兰", "提供", "风暴", "阴影", "导弹"]
    assert [t.text for t in tokenize("NATO軍 and troops")] == ["nato", "軍", "and", "troops"]


def test_chinese_and_japanese_full_stops_end_sentences() -> None:
    text = "英国が供与した。ロシアは反発！「報復する」と述べた。"
    starts = sentence_starts(text)
    assert [text[s] for s in starts] == ["英", "ロ", "「"]


# The sentence-end pattern as first written; _SENTENCE_END_RE is a faster form of it.
_SENTENCE_END_REFERENCE = re.compile(r"[.!?…]+[\"'»”’“)\]]*\s+|\s*\n\s*")
_STOPS_AND_SPACES = st.sampled_from(
    [*"ab X.!?…\"'»”’“)] \t\n\r\u00a0\u2009\u2028\u3000", "...", ".\n", " \n "]
)


@given(st.lists(_STOPS_AND_SPACES, max_size=40).map("".join))
def test_sentence_end_pattern_matches_as_the_reference(text: str) -> None:
    assert [m.span() for m in _SENTENCE_END_RE.finditer(text)] == [
        m.span() for m in _SENTENCE_END_REFERENCE.finditer(text)
    ]


_WORDS_AND_MARKS = st.sampled_from(
    [*"ab Zé9_ .,'’-\n\tжΣ٣ا\u0301\u00a0", "ab", "ٱل", "ก", "中", "ア", "\U0001f600"]
)


@given(st.lists(_WORDS_AND_MARKS, max_size=40).map("".join))
def test_spaced_words_keeps_word_characters_and_spaces_the_rest(text: str) -> None:
    spaced = spaced_words(text)
    if any(c >= "\u0e00" for c in text):
        assert spaced is None
        return
    assert spaced == " " + "".join(c if is_word_char(c) else " " for c in text) + " "


@given(st.lists(_WORDS_AND_MARKS, max_size=40).map("".join))
def test_word_counts_count_word_starts(text: str) -> None:
    counts = word_counts(text)
    if counts is None:
        assert any(c >= "\u3002" for c in text)
        return
    starts = word_starts(text)
    assert counts.tolist() == [sum(1 for s in starts if s <= pos) for pos in range(len(text))]


_FOLDED_OR_NOT = st.sampled_from(
    [*"aZ éÉ ’'`-\u00a0\u2009\tжЁΣ ＮＡ\u30fb", "\ud800", "\U0001f600", "ß", "\u00ad", "e\u0301"]
)


@given(st.lists(_FOLDED_OR_NOT, max_size=40).map("".join))
def test_fold_in_one_table_look_up_equals_fold_by_runs(text: str) -> None:
    """The numpy path of _fold (no character changes length) against the run-by-run one."""
    lowered = text.lower()
    assert _fold(lowered) == _fold_runs(lowered)
