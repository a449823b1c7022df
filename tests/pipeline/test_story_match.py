"""Story matching across languages and rewrites (pipeline/story/, used by dedup).

The texts are written for these tests (not taken from any eval file): short leads of the kind
the pipeline groups, in several languages.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from newsmon.pipeline import stories as dedup
from newsmon.pipeline.detection import Classifier
from newsmon.pipeline.story import (
    StoryFeatures,
    StoryMatcher,
    blocked_together,
    blocking_keys,
    same_story,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def matcher() -> StoryMatcher:
    return StoryMatcher(Classifier.from_path(ROOT / "config" / "topics.yaml"))


EN = (
    "Ukraine fired US-made ATACMS missiles at a military airfield in Russia's Bryansk region "
    "on Tuesday, November 19, Russia's defence ministry said, adding that five of six missiles "
    "were shot down."
)
RU = (
    "Во вторник, 19 ноября, Украина нанесла удар американскими ракетами ATACMS по военному "
    "аэродрому в Брянской области, сообщило Минобороны России. Пять из шести ракет сбиты."
)
DE = (
    "Die Ukraine hat am Dienstag erstmals amerikanische ATACMS-Raketen auf einen Flugplatz im "
    "russischen Gebiet Brjansk abgefeuert, teilte das russische Verteidigungsministerium mit."
)
# Another ATACMS strike six days later: same weapon, same countries, another day and place.
EN_OTHER_STRIKE = (
    "Ukraine struck an air base near Kursk with ATACMS missiles on Monday, November 25, "
    "Russia's defence ministry said, the second such attack in a week."
)


def features(m: StoryMatcher, text: str, lang: str, published: str | None) -> StoryFeatures:
    return m.features(text, "", lang, published)


def test_a_translation_joins_its_story(matcher: StoryMatcher) -> None:
    en = features(matcher, EN, "en", "2024-11-19")
    ru = features(matcher, RU, "ru", "2024-11-19")
    de = features(matcher, DE, "de", "2024-11-19")
    assert "weapon:ATACMS" in en.entities & ru.entities & de.entities
    assert "11-19" in en.dates & ru.dates
    assert en.names & de.names  # Bryansk and Brjansk share a skeleton
    for other in (ru, de):
        joined, value = same_story(en, other)
        assert joined, value


def test_a_translation_joins_without_publication_days(matcher: StoryMatcher) -> None:
    joined, value = same_story(features(matcher, EN, "en", None), features(matcher, RU, "ru", None))
    assert joined, value


def test_same_weapon_on_another_day_stays_apart(matcher: StoryMatcher) -> None:
    first = features(matcher, EN, "en", "2024-11-19")
    later = features(matcher, EN_OTHER_STRIKE, "en", "2024-11-25")
    assert "weapon:ATACMS" in first.entities & later.entities
    joined, value = same_story(first, later)
    assert not joined, value
    # The dates in the texts alone keep them apart too, and across languages.
    joined, value = same_story(features(matcher, RU, "ru", None),
                               features(matcher, EN_OTHER_STRIKE, "en", None))
    assert not joined, value


REWRITE_A = (
    "Britain's prime minister Keir Starmer said on Sunday that the United Kingdom is ready to "
    "put British troops on the ground in Ukraine as part of a peace deal, writing in the "
    "Daily Telegraph ahead of talks in Paris."
)
REWRITE_B = (
    "UK ready to deploy soldiers to Ukraine to secure any peace agreement, Starmer wrote in a "
    "Telegraph article published Sunday before European leaders meet in Paris."
)


def test_a_rewrite_in_one_language_joins_although_minhash_misses_it(
    matcher: StoryMatcher,
) -> None:
    sig_a, sig_b = dedup.signature(REWRITE_A), dedup.signature(REWRITE_B)
    assert dedup.similarity(sig_a, sig_b) < dedup.NEAR_DUPLICATE_THRESHOLD
    a = dedup.Fingerprint("a", "story-a", "hash-a", sig_a, "2025-02-16T08:00:00+00:00",
                          features(matcher, REWRITE_A, "en", "2025-02-16"))
    b = dedup.Fingerprint("b", "story-b", "hash-b", sig_b, "2025-02-16T09:30:00+00:00",
                          features(matcher, REWRITE_B, "en", "2025-02-16"))
    index = dedup.StoryIndex()
    index.add(a)
    assert index.candidates(b) == [a]  # found by a blocking key, not by an LSH band
    decision = dedup.decide_story(b, index.candidates(b))
    assert decision.story_id == "story-a"
    assert decision.match_score is not None and decision.duplicate_of is None


def test_an_old_document_without_features_is_matched_on_minhash_only(
    matcher: StoryMatcher,
) -> None:
    sig = dedup.signature(REWRITE_A)
    old = dedup.Fingerprint("old", "story-old", "hash-old", dedup.signature(REWRITE_B),
                            "2025-02-16T08:00:00+00:00")
    new = dedup.Fingerprint("new", "story-new", "hash-new", sig, "2025-02-16T09:00:00+00:00",
                            features(matcher, REWRITE_A, "en", "2025-02-16"))
    assert dedup.decide_story(new, [old]).story_id == "story-new"
    assert old.story_keys == []


def test_features_survive_the_store_and_bad_stored_values_are_ignored(
    matcher: StoryMatcher,
) -> None:
    original = features(matcher, RU, "ru", "2024-11-19")
    assert StoryFeatures.from_doc(original.to_doc()) == original
    assert StoryFeatures.from_doc(None) is None
    assert StoryFeatures.from_doc({"entities": "ATACMS"}) is None
    assert StoryFeatures.from_doc({"day": "yesterday"}) is None


def test_blocking_keys_meet_within_about_a_week_only(matcher: StoryMatcher) -> None:
    monday = features(matcher, EN, "en", "2024-11-18")
    sunday_after = features(matcher, EN, "en", "2024-11-24")
    month_later = features(matcher, EN, "en", "2024-12-19")
    assert set(blocking_keys(monday)) & set(blocking_keys(sunday_after))
    assert blocked_together(monday, sunday_after)
    assert not set(blocking_keys(monday)) & set(blocking_keys(month_later))
    assert not blocked_together(monday, month_later)


def test_a_document_stored_before_story_features_is_still_read() -> None:
    from newsmon.pipeline.stages.store import _FINGERPRINT_FIELDS, fingerprint_of_doc

    assert "story_features" in _FINGERPRINT_FIELDS
    old = {"doc_id": "d1", "story_id": "s1", "text_hash": "h", "minhash": [1, 2, 3],
           "first_seen_at": "2024-11-19T10:00:00+00:00"}
    fp = fingerprint_of_doc(old)
    assert fp.features is None and fp.signature == (1, 2, 3) and fp.story_keys == []
    broken = fingerprint_of_doc({**old, "story_features": {"numbers": [19]}})
    assert broken.features is None


def test_titles_institutions_and_calendar_words_are_not_names(matcher: StoryMatcher) -> None:
    """A capital inside a sentence marks a name, but "President", "Ministerium", "Reuters"
    or a month name say nothing about which event it is: none of them is a name, so two
    unrelated reports cannot share them as a place."""
    text = ("Laut Reuters hätten das Ministerium und der Präsident am Montag im November "
            "entschieden, in Saporischschja zu bleiben.")
    names = matcher.features(text, "", "de", None).names
    assert names == {"sprs"}  # Saporischschja only


def test_a_shared_place_counts_for_one_story(matcher: StoryMatcher) -> None:
    """Two leads in two languages with no entity of the rule set in common, only a place:
    the place is evidence, and two other places are evidence against."""
    de = features(matcher, "Der Damm bei Nowa Kachowka nahe Cherson ist zerstört worden.",
                  "de", None)
    it = features(matcher, "La diga di Nova Kakhovka vicino a Kherson è stata distrutta.",
                  "it", None)
    other = features(matcher, "La diga di Zaporižžja vicino a Enerhodar è stata colpita.",
                     "it", None)
    assert de.names & it.names >= {"kfk", "krsn"}
    assert not de.names & other.names
    assert same_story(de, it)[1] > same_story(de, other)[1] + 1.0


def test_years_are_not_shared_figures_and_different_figures_count_against(
        matcher: StoryMatcher) -> None:
    """"2024" is in every report of the year; "3,350" missiles is a fact. Two reports that
    each give a figure and share none score lower than two that give none."""
    a = features(matcher, "In 2024 the United States approved 3,350 ERAM missiles for Ukraine.",
                 "en", None)
    b = features(matcher, "In 2024 the United States approved 840 ERAM missiles for Ukraine.",
                 "en", None)
    c = features(matcher, "In 2024 the United States approved ERAM missiles for Ukraine.",
                 "en", None)
    assert "2024" in a.numbers & b.numbers
    assert same_story(a, c)[1] > same_story(a, b)[1]
    assert same_story(a, a)[1] > same_story(a, c)[1]


def test_the_rules_concept_groups_tell_a_delivery_from_a_strike(matcher: StoryMatcher) -> None:
    """The rule set's concept groups are the same in every language: a German report of a
    strike shares more of them with a Russian report of a strike than with one of a
    delivery of the same weapon."""
    strike_de = features(matcher, DE, "de", None)
    strike_ru = features(matcher, RU, "ru", None)
    supply_ru = features(matcher, "США передали Украине ракеты ATACMS для ударов по России, "
                         "сообщил Пентагон.", "ru", None)
    assert "long_range_strike:STRIKE" in strike_de.groups & strike_ru.groups
    assert "long_range_strike:SUPPLY" in supply_ru.groups - strike_de.groups
    shared = len(strike_de.groups & strike_ru.groups) / len(strike_de.groups | strike_ru.groups)
    other = len(strike_de.groups & supply_ru.groups) / len(strike_de.groups | supply_ru.groups)
    assert shared > other


def test_small_counts_agree_in_digits_and_words() -> None:
    from newsmon.pipeline.story.words import small_count

    assert [small_count(w) for w in ("6", "six", "sechs", "шестью", "seis", "sześć")] == ["6"] * 6
    # Not counts: one and zero (articles, noise), years, an English adverb, a longer word
    # that starts with a count ("eighty" is not "eight").
    assert [small_count(w) for w in ("1", "0", "2024", "once", "eighty", "sei")] == [None] * 6


def test_a_count_spelled_out_matches_its_digit(matcher: StoryMatcher) -> None:
    en = features(matcher, "Russia said it shot down 6 ATACMS missiles over Bryansk.", "en", None)
    de = features(matcher, "Russland meldet sechs abgeschossene ATACMS-Raketen.", "de", None)
    other = features(matcher, "Russia said it shot down eight ATACMS missiles.", "en", None)
    assert en.counts == de.counts == frozenset({"6"})
    assert other.counts == frozenset({"8"})
    # Stored and read back with the other features (an older document has none).
    assert StoryFeatures.from_doc(de.to_doc()) == de
    assert StoryFeatures.from_doc({k: v for k, v in de.to_doc().items() if k != "counts"}) \
        == replace(de, counts=frozenset())


def test_without_a_title_the_first_sentence_stands_in(matcher: StoryMatcher) -> None:
    lead = "Macron rules out nothing. Later he spoke of Europe's security."
    untitled = matcher.features(lead, "", "en", None)
    titled = matcher.features(lead, "Troops for Ukraine", "en", None)
    assert {"macro", "rules", "nothi"} <= untitled.title_stems
    assert "later" not in untitled.title_stems
    assert titled.title_stems == frozenset({"troop", "ukrai"})


def test_the_day_of_a_date_is_not_a_figure(matcher: StoryMatcher) -> None:
    """A summit "on 26 February" and "26 countries" share no figure (they did: the day was
    also read as a number, and a figure both name is strong evidence of one story)."""
    remark = features(matcher, "On 26 February Macron said troops could not be ruled out.",
                      "en", None)
    pledge = features(matcher, "26 countries pledged troops for Ukraine, Macron said.", "en",
                      None)
    assert remark.dates == frozenset({"2-26"}) and "26" not in remark.numbers
    assert "26" in pledge.numbers
    assert not remark.numbers & pledge.numbers
    # Nor is a one-digit day a count: "on 6 June" says nothing about six of anything.
    assert not features(matcher, "The dam broke on 6 June.", "en", None).counts


def test_a_dateline_month_of_three_letters_is_a_date(matcher: StoryMatcher) -> None:
    lead = features(matcher, "МОСКВА, 26 ноя - РИА Новости. Минобороны сообщило об ударе.",
                    "ru", None)
    assert lead.dates == frozenset({"11-26"})
    assert "26" not in lead.numbers


def test_a_date_in_digits_of_chinese_is_a_date(matcher: StoryMatcher) -> None:
    lead = features(matcher, "据央视11月20日消息,当地时间19日凌晨,乌军发射了ATACMS导弹。", "zh",
                    None)
    assert lead.dates == frozenset({"11-20"})
    assert not lead.numbers  # neither 11, 20 nor the 19th are figures
