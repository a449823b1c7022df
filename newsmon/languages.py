"""Languages: which ones newsmon tells apart, and which the search servers analyze.

One place for language facts: the identifier's codes as feeds and rules write them
(:func:`detect_language`), and the search-server analyzer for each language that has one
(:data:`LANGUAGE_ANALYZERS`, used by the index mappings).
"""

from __future__ import annotations

import functools

#: Article languages (ISO 639-1) -> the built-in analyzer for their subfield. Ukrainian and
#: Polish analyzers come from plugins (analysis-ukrainian, analysis-stempel): they are used
#: where a server has them, like the others.
LANGUAGE_ANALYZERS: dict[str, str] = {
    "en": "english", "de": "german", "fr": "french", "ru": "russian",
    "uk": "ukrainian", "pl": "polish", "it": "italian", "es": "spanish",
}
#: The ones every server with the analysis-common module has (no plugin needed).
COMMON_LANGUAGES: tuple[str, ...] = ("de", "en", "es", "fr", "it", "ru")

#: Fewer bytes than this say too little for the identifier: the source's language is used.
_MIN_BYTES_FOR_LANGID = 40

#: The identifier reads this many characters from the start: they decide as the whole text
#: does. 600 gave the same answer as the whole text at a third of its cost; 400 gives the
#: same as 600 on every text of tests/gold, the eval sets (dev, dev2) and the bench's 3,000
#: synthetic articles at 70 % of its cost (300 and shorter do not: docs/benchmarks.md,
#: "Throughput, fifth round").
_LANGID_HEAD = 400

#: Below this probability the identifier's best guess is no better than a coin: the article's
#: language is then the source's, or "und" (undetermined). On the labelled sets (dev, dev2,
#: gold) every text scores far above it; mixed and name-only texts fall below.
_MIN_CONFIDENCE = 0.5
#: Codes the identifier uses for a member of a macrolanguage, written as the macrolanguage's
#: ISO 639-1 code as feeds and rules write it; "zxx" is its "no linguistic content".
_LANG_ALIASES = {"nb": "no", "nn": "no", "arz": "ar", "ary": "ar", "yue": "zh", "wuu": "zh",
                 "uzs": "uz", "zxx": "und"}


@functools.cache
def _identifier() -> object:
    # py3langid (a maintained fork of langid.py) ships its model in the wheel (nothing is
    # downloaded) and knows 140 languages in 4 MB. On the labelled sets it is right on 99% of
    # texts, faster than lingua with the eight languages newsmon first covered and at half its
    # memory; lingua restricted to the 28 languages with rules was less accurate, three times
    # slower and took 835 MB (docs/detection.md, "Language identification").
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str, hint: str = "") -> str:
    """ISO 639-1 code (639-3 where a language has none); the source's configured language, or
    "und", when the text is too short or no language is likely enough."""
    # Bytes, not characters: the identifier reads byte n-grams, and 15 Chinese characters say
    # as much as 40 Latin letters.
    if len(text.encode("utf-8", "surrogatepass")) < _MIN_BYTES_FOR_LANGID:
        return hint or "und"
    head = text[:_LANGID_HEAD]
    code, probability = _identifier().classify(head)  # type: ignore[attr-defined]
    lang = _LANG_ALIASES.get(code, code)
    if probability < _MIN_CONFIDENCE:
        # Mandarin splits its probability with Wu and Cantonese, Bokmål with Nynorsk: summed
        # as one language they may be sure enough (the full ranking only in this rare case).
        totals: dict[str, float] = {}
        for code, share in _identifier().rank(head):  # type: ignore[attr-defined]
            alias = _LANG_ALIASES.get(code, code)
            totals[alias] = totals.get(alias, 0.0) + share
        lang, probability = max(totals.items(), key=lambda item: item[1])
    if lang == "und" or probability < _MIN_CONFIDENCE:
        return hint or "und"
    return str(lang)
