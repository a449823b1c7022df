"""The compiled detection core (native/, module ``newsmon_native``) against the Python
reference (``Classifier(rules, reference=True)``), and the compiled core as the one in use.

Equal output is checked on the gold texts with adversarial variants (test_pinned_output.py's),
on generated texts made of rule terms glued by punctuation, combining marks, soft hyphens,
scripts without spaces and long runs, and for the sentence splitter on generated prose. The
compiled core is required: these tests fail, never skip, where it is not installed.
"""

from __future__ import annotations

import builtins
import pickle
import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsmon.pipeline.detection import Classifier, RuleSet, load_rules
from newsmon.pipeline.detection.matcher import _native_splitter
from newsmon.pipeline.detection.text import char_classes, sentence_starts
from tests.pipeline.detection.test_pinned_output import _gold, _variants

REPO = Path(__file__).resolve().parents[3]
TOPICS = REPO / "config" / "topics.yaml"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(TOPICS)


@pytest.fixture(scope="module")
def pair(rules: RuleSet) -> tuple[Classifier, Classifier]:
    return Classifier(rules), Classifier(rules, reference=True)


@pytest.fixture(scope="module")
def own_pair(rules: RuleSet) -> tuple[Classifier, Classifier]:
    own = rules.model_copy(update={"match_all_languages": False})
    return Classifier(own), Classifier(own, reference=True)


def test_the_compiled_core_is_what_production_uses(rules: RuleSet) -> None:
    """Every way the pipeline gets a classifier runs the compiled core: built, shared per
    process (ClassifyTopicsFn, GroupStoriesFn) and unpickled on a worker."""
    import newsmon_native  # fails here, not skipped, where native/ was not built

    assert Classifier(rules).compiled
    assert Classifier.from_path(TOPICS).compiled
    shared = Classifier.shared(TOPICS)
    assert shared.compiled
    assert isinstance(shared._engine, newsmon_native.Engine)
    assert pickle.loads(pickle.dumps(shared)).compiled
    reference = Classifier(rules, reference=True)
    assert not reference.compiled
    assert not pickle.loads(pickle.dumps(reference)).compiled


def test_a_missing_compiled_core_is_a_clear_error(
    rules: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No silent fallback to the Python path: without the extension the classifier is not
    built, and the error says what to install and how."""
    real_import = builtins.__import__

    def without_native(name: str, *args: object, **kwargs: object) -> object:
        if name == "newsmon_native":
            raise ImportError("No module named 'newsmon_native'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.delitem(sys.modules, "newsmon_native", raising=False)
    monkeypatch.setattr(builtins, "__import__", without_native)
    with pytest.raises(ImportError, match=r"newsmon-native.*make install.*cargo"):
        Classifier(rules)
    assert not Classifier(rules, reference=True).compiled


def _same(pair: tuple[Classifier, Classifier], text: str, lang: str | None,
          title: str = "") -> None:
    compiled, reference = pair
    assert compiled.classify(text, lang, title=title) == reference.classify(text, lang,
                                                                            title=title)


def test_gold_texts_and_variants_classify_alike(
    pair: tuple[Classifier, Classifier], own_pair: tuple[Classifier, Classifier]
) -> None:
    gold = _gold()
    for text, lang, title in gold:
        for variant in _variants(text):
            _same(pair, variant, lang or None)
            _same(own_pair, variant, lang or None)
        _same(pair, text, "und", title=title or text[:60])
        _same(pair, text, "sw")  # a language without rules: the review rules
    everything = "\n".join(text for text, _, _ in gold)
    _same(pair, everything, None)
    _same(pair, everything.replace("\n", " "), None)


def _terms(rules: RuleSet) -> list[str]:
    """Some terms of every group and entity, as written (wildcards dropped), for texts that
    fire rules."""
    rng = random.Random(14)
    terms: list[str] = []
    for concept in [*rules.groups.values(), *rules.entities]:
        for weights in concept.terms.values():
            written = [t.strip("*=") for t in weights]
            terms.extend(rng.sample(written, min(3, len(written))))
    return sorted(set(terms))


_GLUE = [" ", " ", " ", ". ", ", ", "\n", "-", "_", "(", ")", "«", "»", "'", "’", "\u00ad",
         "\u200b", "\u0301", "\u0308", "7", "ß", "İ", "ǅ", ". Dr. ", " U.S. ", "…\n",
         "\u3002", "の", "ไทย", "\U0001f600", "ＵＳ", "\u00a0", "\x1c"]


@st.composite
def _texts(draw: st.DrawFn, words: list[str]) -> str:
    parts = draw(st.lists(st.one_of(st.sampled_from(words), st.sampled_from(_GLUE),
                                    st.text(max_size=4)), max_size=80))
    text = "".join(parts)
    if draw(st.booleans()):
        text = text.upper() if draw(st.booleans()) else text.replace(" ", "")
    return text


@pytest.fixture(scope="module")
def words(rules: RuleSet) -> list[str]:
    return _terms(rules)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_texts_classify_alike(
    data: st.DataObject, pair: tuple[Classifier, Classifier],
    own_pair: tuple[Classifier, Classifier], words: list[str],
) -> None:
    text = data.draw(_texts(words))
    lang = data.draw(st.sampled_from([None, "en", "de", "ru", "uk", "und", "sw"]))
    _same(pair, text, lang)
    _same(own_pair, text, lang)


def test_long_generated_texts_classify_alike(
    pair: tuple[Classifier, Classifier], words: list[str]
) -> None:
    """Articles of tens of thousands of characters, with and without scripts without spaces."""
    rng = random.Random(21)
    for spaced_only in (True, False):
        glue = [g for g in _GLUE if not spaced_only or g < "\u0e00"]
        for _ in range(5):
            text = "".join(rng.choice(words) + rng.choice(glue) for _ in range(4_000))
            _same(pair, text, rng.choice([None, "en", "sw"]))


_PROSE = st.sampled_from(
    ["a", "Z", "mr", "Dr", "U.S", "z.B", "т.е", "Ст", "İ", "ǅ", "Σ", "ß", "7", "²", "٣", "Ⅳ",
     "ا", "漢", "(", "«", "„", "\"", "'", "’", ")", "]", "」", ".", "!", "?", "…", "。", "！",
     " ", " ", "  ", "\n", "\t", "\u00a0", "\u2028", "\x1c", "\x85", "\u3000", "\U0001f600"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_PROSE, max_size=60).map("".join))
def test_compiled_sentence_starts_agree(text: str) -> None:
    starts = _native_splitter()(text)
    if starts is None:  # text it leaves to Python: a character from U+10000 up
        assert any(ord(c) >= 0x10000 for c in text)
    else:
        assert starts == sentence_starts(text)


def test_compiled_sentence_starts_on_gold_texts() -> None:
    split = _native_splitter()
    for text, _, _ in _gold():
        for variant in _variants(text):
            found = split(variant)
            assert found is None or found == sentence_starts(variant)
    assert split("a\ud800. B") is None  # a lone surrogate: left to Python


def test_character_table_is_pythons() -> None:
    table = char_classes()
    for cp in (0x20, 0x1C, 0x85, 0xA0, 0x2028, 0x3000, ord("A"), ord("ǅ"), ord("²"),
               ord("٣"), ord("ß"), ord("漢"), 0xD800):
        ch = chr(cp)
        assert table[cp] == (ch.isspace() | ch.isupper() << 1 | ch.isdigit() << 2
                             | ch.isalpha() << 3 | ch.islower() << 4)
    assert len(table) == 0x10000
