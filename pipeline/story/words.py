"""Words of one article reduced to what two scripts and two languages share: a proper name's
consonant skeleton (Брянск, Bryansk, Brjansk -> ``brns``), a figure without its separators
(1,000 = 1.000 = 1 000), and the month and weekday names of many languages (CLDR, via babel).
Pure functions and tables; ``newsmon.pipeline.story.facts`` reads an article with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from anyascii import anyascii
from babel import Locale, UnknownLocaleError
from babel.dates import get_day_names, get_month_names

__all__ = ["COMMON_CAPITALISED", "Calendar", "number", "skeleton", "small_count"]

#: Capitalised words that are not names of this event: titles, institutions, news agencies,
#: the two capitals every report names, and nouns German capitalises. Their skeletons
#: ("prsd" for President, Präsident, Президент) would otherwise count as a shared place or
#: person between any two reports.
COMMON_CAPITALISED = frozenset({
    "President", "Präsident", "Президент", "Президента", "Président", "Presidente", "Prezydent",
    "Minister", "Ministerium", "Министр", "Министерство", "Міністр", "Ministre", "Ministro",
    "Ministry", "Prime", "Premier", "Premierminister", "Премьер", "Прем'єр", "Chancellor",
    "Kanzler", "Bundeskanzler", "Military", "Militär", "Militärs", "Армия", "Army", "Armee",
    "Soldaten", "Soldiers", "Солдат", "Raketen", "Rakete", "Ракета", "Ракеты", "Missiles",
    "Missile", "Region", "Regionen", "Oblast", "Область", "Defense", "Defence", "Verteidigung",
    "Verteidigungsminister", "Government", "Regierung", "Правительство", "Reuters", "Рейтер",
    "Ройтерс", "Reuter", "Agence", "Interfax", "Интерфакс", "Telegram", "Телеграм",
    "Телеграм-канале", "Moscow", "Moskau", "Москва", "Москве", "Moscou", "Mosca", "Moskwa",
    "Kyiv", "Kiew", "Киев", "Київ", "Kiev", "Kijów", "Kremlin", "Kreml", "Кремль", "Кремля",
    "Western", "Westen", "Europe", "Europa", "Европа", "European", "Europäische", "Ukrainian",
    "Ukrainer", "Украинские", "Russian", "Russen", "Российские", "Foreign", "Außenminister",
    "Staaten", "Sputnik", "Tass", "ТАСС", "Ria", "РИА", "Bundeswehr", "Bundesregierung",
    "Bundestag",
})

_VOWELS = str.maketrans("", "", "aeiouyjh'")
_FOLDS = (("kh", "k"), ("ch", "k"), ("ck", "k"), ("c", "k"), ("q", "k"), ("ph", "f"),
          ("w", "f"), ("v", "f"), ("z", "s"), ("x", "ks"))


def skeleton(word: str) -> str:
    """A transliterated name's first consonants: Kakhovka, Kachowka, Каховка -> ``kfk``;
    Kherson, Cherson, Херсон, chersońskim -> ``krsn``.

    Vowels, j/y/h and apostrophes differ most between transliterations and inflections, so
    they are dropped; kh/ch/c/q fold into k, w/v/ph into f, z into s. Four consonants are
    enough to tell places apart and short enough to ignore case endings.
    """
    latin = anyascii(word).lower()
    for old, new in _FOLDS:
        latin = latin.replace(old, new)
    consonants = latin.translate(_VOWELS)
    # Collapse doubled letters (Belgorod / Bełgorod / Белгород differ in nothing else).
    return re.sub(r"(.)\1+", r"\1", consonants)[:4]


class Calendar:
    """Month and weekday names of many languages (from CLDR, via babel), read off a token.

    Slavic languages inflect them ("в среду", "у вівторок"): a name of five letters or more
    also matches a word of its length that differs only in its last letter. A month name outside
    ASCII also matches its first three letters ("ноя", "лис", "paź").
    """

    def __init__(self, languages: Iterable[str]) -> None:
        self.months: dict[str, int] = {}
        self.days: dict[str, int] = {}
        self._month_stems: dict[str, int] = {}
        self._day_stems: dict[str, int] = {}
        for lang in sorted({"en", *languages}):
            try:
                Locale.parse(lang)
            except (UnknownLocaleError, ValueError):
                continue
            for context in ("format", "stand-alone"):
                for width in ("wide", "abbreviated"):
                    for number, name in get_month_names(width, context, lang).items():
                        self._add(name, number, self.months, self._month_stems)
                        if width == "wide" and not name.isascii():
                            # Agency datelines cut a month to three letters where CLDR has
                            # four or a dot ("МОСКВА, 26 ноя - РИА Новости"). Only outside
                            # ASCII: three Latin letters are too often a word ("ago", "mar").
                            self.months.setdefault(name.lower()[:3], number)
                for number, name in get_day_names("wide", context, lang).items():
                    self._add(name, number, self.days, self._day_stems)

    @staticmethod
    def _add(name: str, value: int, exact: dict[str, int], stems: dict[str, int]) -> None:
        word = name.lower().rstrip(".")
        if len(word) < 3:
            return
        exact.setdefault(word, value)
        if len(word) >= 5:
            stems.setdefault(word[:-1] + str(len(word)), value)

    def month(self, word: str) -> int | None:
        return self.months.get(word) or self._month_stems.get(word[:-1] + str(len(word)))

    def day(self, word: str) -> int | None:
        found = self.days.get(word)
        if found is None:
            found = self._day_stems.get(word[:-1] + str(len(word)))
        return found


def number(raw: str) -> str | None:
    digits = re.sub(r"[ \u00a0\u202f]", "", raw)
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", digits):
        digits = re.sub(r"[.,]", "", digits)
    digits = digits.replace(",", ".")
    # Single digits are everywhere (and often spelled out in another language's copy).
    if len(digits.replace(".", "")) < 2:
        return None
    return digits.rstrip("0").rstrip(".") if "." in digits else digits




#: Counts from two to twelve written as words, in the languages the gold set and the rule set
#: cover most ("six missiles", "sechs Raketen", "шестью ракетами", "6 missiles" agree). One
#: report spells a small count out where another writes its digit, so ``number`` (which skips
#: single digits) never sees them agree. No maintained library parses number words in these
#: languages (babel formats numbers, num2words only writes them, and would be a dependency for
#: a hundred words), hence this table.
_COUNT_WORDS = {
    "en": "two three four five six seven eight nine ten eleven twelve",
    "de": "zwei drei vier fünf sechs sieben acht neun zehn elf zwölf",
    "fr": "deux trois quatre cinq six sept huit neuf dix onze douze",
    "es": "dos tres cuatro cinco seis siete ocho nueve diez once doce",
    "it": "due tre quattro cinque sei sette otto nove dieci undici dodici",
    "pt": "dois três quatro cinco seis sete oito nove dez onze doze",
    "pl": "dwa trzy cztery pięć sześć siedem osiem dziewięć dziesięć jedenaście dwanaście",
    "ru": "два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать",
    "uk": "два три чотири п'ять шість сім вісім дев'ять десять одинадцять дванадцять",
    "bg": "два три четири пет шест седем осем девет десет единадесет дванадесет",
}
_COUNTS: dict[str, str] = {
    word: str(value)
    for words in _COUNT_WORDS.values()
    for value, word in enumerate(words.split(), 2)
    # Count words that are common words of another language here: English "once" and
    # "due", Portuguese "sei" (I know).
    if word not in ("once", "due", "sei")
}


def small_count(word: str) -> str | None:
    """The count from two to twelve a lowercase token states, as digits: "6", "six",
    "sechs", "шестью" (an inflected Slavic numeral: up to two letters of ending) -> "6".
    None for anything else, including "1" and "0" (articles and noise)."""
    if len(word) == 1:
        return word if word.isdigit() and word not in "01" else None
    if word.isdigit():
        return word if word in ("10", "11", "12") else None
    found = _COUNTS.get(word.replace("\u02bc", "'").replace("\u2019", "'"))
    if found is None and len(word) >= 5 and not word.isascii():
        # Slavic numerals decline (шести, шестью, pięciu): drop up to two letters. Latin
        # ASCII words do not ("eighty" is not "eight").
        found = _COUNTS.get(word[:-1]) or (_COUNTS.get(word[:-2]) if len(word) >= 6 else None)
    return found
