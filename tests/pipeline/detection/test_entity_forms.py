"""Entity name forms: a weapon, a leader or a country is the same entity in every script and
inflection the rules know (config/terms/<lang>.yaml, any.yaml for forms shared by many
languages), and a word that only looks like a name is not one.

Story grouping across languages (pipeline/story/) reads these entities: a report whose
entities the rules miss in its language shares no weapon or leader with the other reports
of its event, and no blocking key. The sentences are written for this test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.pipeline.detection import Classifier

TOPICS = Path(__file__).resolve().parents[3] / "config" / "topics.yaml"


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.from_path(TOPICS)


def _names(classifier: Classifier, text: str) -> set[str]:
    return {e.name for e in classifier.classify(text, None).entities}


@pytest.mark.parametrize(("text", "expected"), [
    # Weapons: transliterations, a singular written without its S, declined forms.
    ("Oborene „atakams“ rakete iznad Brjanska", {"ATACMS"}),
    ("Ucrania lanzó seis misiles ATACM contra Rusia", {"ATACMS", "Ukraine", "Russia"}),
    ("Америчке ракете атакамс и Хајмарс", {"ATACMS", "HIMARS"}),
    ("Raketni sistem Orešnik stavljen je na borbeno dežurstvo", {"Oreshnik"}),
    ("Rusya Oreşnik füzesini kullandı", {"Oreshnik"}),
    ("Az Oresnyik rakétát vetették be", {"Oreshnik"}),
    ("Putin zei dat de Oresjnik werd ingezet", {"Oreshnik", "Vladimir Putin"}),
    ("Niemcy nie dostarczą Taurusów", {"Taurus", "Germany"}),
    ("Ракетите „Пейтриът“ и ХИМАРС", {"Patriot", "HIMARS"}),
    ("Η Ρωσία λέει ότι οι ορέσνικ και τα ATACMS", {"Russia", "Oreshnik", "ATACMS"}),
    # Leaders: declined forms and other scripts.
    ("Rozmowa Merza z Zełenskim", {"Friedrich Merz", "Volodymyr Zelensky"}),
    ("Schůzka s Merzem a Ruttem", {"Friedrich Merz", "Mark Rutte"}),
    ("Merzin mukaan rajoituksia ei ole", {"Friedrich Merz"}),
    ("Ο Σολτς και ο Μερτς συναντήθηκαν", {"Olaf Scholz", "Friedrich Merz"}),
    ("Шолц и Туск в Брюксел", {"Olaf Scholz", "Donald Tusk"}),
    ("Makron i Bajden razgovarali o Šolcu", {"Emmanuel Macron", "Joe Biden", "Olaf Scholz"}),
    ("Бајден и Шолц", {"Joe Biden", "Olaf Scholz"}),
    ("قال ستارمر وشولتس إن", {"Keir Starmer", "Olaf Scholz"}),
    ("默茨与图斯克会面", {"Friedrich Merz", "Donald Tusk"}),
    ("トゥスク首相とメローニ首相", {"Donald Tusk", "Giorgia Meloni"}),
    ("ラブロフ外相とペスコフ報道官", {"Sergei Lavrov", "Dmitry Peskov"}),
    ("قال لافروف وتوسك", {"Sergei Lavrov", "Donald Tusk"}),
    ("Ο Λαβρόφ και η Μελόνι", {"Sergei Lavrov", "Giorgia Meloni"}),
    # Countries: genitives, Serbian Cyrillic, Chinese short forms, Nordic and Greek names.
    ("Frankreichs Präsident und Deutschlands Kanzler", {"France", "Germany"}),
    ("Украјина, Русија и Немачка", {"Ukraine", "Russia", "Germany"}),
    ("乌军发射导弹袭击俄军阵地", {"Ukraine", "Russia"}),
    ("Ryssland och Tyskland", {"Russia", "Germany"}),
    ("Rusland og Storbritannien", {"Russia", "United Kingdom"}),
    ("Η Πολωνία και η Λευκορωσία", {"Poland", "Belarus"}),
    ("Birleşik Krallık ve Polonya", {"United Kingdom", "Poland"}),
])
def test_name_forms_give_their_entity(classifier: Classifier, text: str,
                                      expected: set[str]) -> None:
    assert expected <= _names(classifier, text)


@pytest.mark.parametrize("text", [
    "The rutter and the bookmaker",          # not Rutte
    "Ein Fest in Merzig an der Saar",        # not Merz
    "Die deutschsprachige Presse",           # the language, not Germany
    "Merci beaucoup",                        # not Merz (Serbian Merc-)
    "An almanac of swimming pools",          # not Germany (Turkish alman), not Poland (Dutch pools)
    "Русский патриот",                       # the Russian word patriot is not the Patriot system
])
def test_look_alikes_are_not_entities(classifier: Classifier, text: str) -> None:
    assert _names(classifier, text) == set()
