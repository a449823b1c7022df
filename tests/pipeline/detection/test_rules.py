"""The rule language, the matcher's evidence, and the shipped rules on the seed and gold set."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsmon.configfile import ConfigError
from newsmon.pipeline.detection import Classifier, RuleSet, load_rules
from newsmon.pipeline.detection.evaluation import EvalReport, evaluate, read_records
from newsmon.pipeline.detection.text import normalize
from tests.conftest import SHARED

REPO = Path(__file__).resolve().parents[3]
TOPICS = REPO / "config" / "topics.yaml"
SEEDS = SHARED / "seeds"
GOLD = REPO / "tests" / "gold" / "gold.jsonl"
LANGUAGES = ("en", "de", "fr", "ru", "uk", "pl", "it", "es")


def make(topic: dict[str, Any], groups: dict[str, Any], **extra: Any) -> Classifier:
    """A classifier with one topic called ``t``; groups given as ``{name: {lang: terms}}``."""
    data = {
        "groups": {name: {"terms": terms} for name, terms in groups.items()},
        "topics": {"t": topic},
        **extra,
    }
    return Classifier(RuleSet.model_validate(data))


def topics(classifier: Classifier, text: str, title: str = "") -> set[str]:
    return {m.topic for m in classifier.classify(text, title=title).topics}


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.from_path(TOPICS)


# --- the rule language -------------------------------------------------------------------


def test_prefix_wildcard_matches_inflections() -> None:
    c = make({"rules": [{"id": "r", "anchor": "TROOPS"}]}, {"TROOPS": {"ru": ["войск*"]}})
    assert topics(c, "Ввод войсками НАТО") == {"t"}
    assert topics(c, "Ввод войсками НАТО".replace("войсками", "провойск")) == set()


def test_suffix_wildcard_matches_german_compounds() -> None:
    c = make({"rules": [{"id": "r", "anchor": "TROOPS"}]}, {"TROOPS": {"de": ["*truppen"]}})
    assert topics(c, "Keine Bodentruppen!") == {"t"}
    assert topics(c, "Truppenübungsplatz") == set()  # the word must end there


def test_whole_words_and_exact_phrases() -> None:
    c = make(
        {"rules": [{"id": "r", "anchor": "G"}]},
        {"G": {"en": ["boots on the ground", "ban"]}},
    )
    assert topics(c, "No boots-on-the-ground, he said") == {"t"}
    assert topics(c, "boots on their ground") == set()
    assert topics(c, "a banner") == set()


def test_case_sensitive_term() -> None:
    c = make({"rules": [{"id": "r", "anchor": "G"}]}, {"G": {"en": ["=US"]}})
    assert topics(c, "The US said") == {"t"}
    assert topics(c, "Tell us more") == set()


def test_diacritics_yo_and_hyphens_match_either_way() -> None:
    c = make(
        {"rules": [{"id": "r", "anchor": "W", "with": ["X"]}]},
        {"W": {"de": ["storm shadow"]}, "X": {"de": ["marschflugkorper"], "ru": ["ещё"]}},
    )
    assert topics(c, "Die Storm-Shadow-Marschflugkörper") == {"t"}
    assert topics(c, "storm shadow, ЕЩЕ") == {"t"}


def test_terms_in_scripts_without_spaces_match_inside_a_run_of_text() -> None:
    c = make(
        {"rules": [{"id": "r", "anchor": "W", "with": ["S"]}]},
        {
            "W": {"ja": ["ストームシャドー"], "zh": ["风暴阴影"], "any": ["atacms"]},
            "S": {"ja": ["供与"], "zh": ["提供"], "en": ["supply"]},
        },
    )
    text = "英国がストーム・シャドーを供与"
    match = c.classify(text).topics[0]
    spans = {text[e.start : e.end] for e in match.evidence}
    assert spans == {"ストーム・シャドー", "供与"}
    assert topics(c, "英国向乌克兰提供风暴阴影导弹") == {"t"}
    # A Latin term beside Japanese: the script change is a word boundary; full width folds.
    assert topics(c, "米国はATACMSを供与した") == {"t"}
    assert topics(c, "米国はＡＴＡＣＭＳを供与した") == {"t"}
    # ...but Latin words still need their boundaries among Latin letters.
    assert topics(c, "xatacms supply") == set()
    assert topics(c, "atacms supply") == {"t"}


def test_wildcards_stop_at_a_script_without_spaces() -> None:
    c = make({"rules": [{"id": "r", "anchor": "N"}]}, {"N": {"any": ["nato*"]}})
    text = "NATO軍がウクライナへ"
    evidence = c.classify(text).topics[0].evidence
    assert [text[e.start : e.end] for e in evidence] == ["NATO"]


def test_word_distances_in_japanese() -> None:
    c = make(
        {"rules": [{"id": "r", "anchor": "T", "with": [{"group": "W", "near": "2 words"}]}]},
        {"T": {"ja": ["軍"]}, "W": {"ja": ["フランス"]}},
    )
    assert topics(c, "フランス軍を派遣") == {"t"}
    assert topics(c, "フランスの大統領は、英国と共に軍を派遣") == set()


def test_proximity_in_words_sentences_and_article() -> None:
    groups = {"A": {"en": ["troops"]}, "B": {"en": ["ukraine"]}}
    near = make(
        {"rules": [{"id": "r", "anchor": "A", "with": [{"group": "B", "near": "3 words"}]}]}, groups
    )
    assert topics(near, "troops sent to Ukraine") == {"t"}
    assert topics(near, "troops were finally sent to Ukraine") == set()
    sentence = make({"rules": [{"id": "r", "anchor": "A", "with": ["B"]}]}, groups)
    assert topics(sentence, "Troops were finally, after long talks, sent to Ukraine.") == {"t"}
    assert topics(sentence, "Troops were sent. Ukraine said so.") == set()
    two = make(
        {"rules": [{"id": "r", "anchor": "A", "with": [{"group": "B", "near": "2 sentences"}]}]},
        groups,
    )
    assert topics(two, "Troops were sent. Ukraine said so.") == {"t"}
    assert topics(two, "Troops were sent. Nobody said. Ukraine said so.") == set()
    article = make(
        {"rules": [{"id": "r", "anchor": "A", "with": [{"group": "B", "near": "article"}]}]}, groups
    )
    assert topics(article, "Troops were sent. Nobody said. Ukraine said so.") == {"t"}


def test_directional_distance() -> None:
    c = make(
        {
            "rules": [
                {"id": "r", "anchor": "M", "without": [{"group": "R", "near": "2 words before"}]}
            ]
        },
        {"M": {"en": ["missiles"]}, "R": {"en": ["russian"]}},
    )
    assert topics(c, "Russian cruise missiles hit Kyiv") == set()
    assert topics(c, "missiles against Russian territory") == {"t"}


def test_and_or_not() -> None:
    c = make(
        {
            "rules": [
                {
                    "id": "r",
                    "anchor": "A",
                    "with": ["B", {"any": ["C", "D"]}],
                    "without": [{"group": "E", "near": "3 words"}],
                }
            ]
        },
        {
            "A": {"en": ["troops"]},
            "B": {"en": ["send"]},
            "C": {"en": ["ukraine"]},
            "D": {"fr": ["ukraine"], "en": ["kyiv"]},
            "E": {"en": ["russian"]},
        },
    )
    assert topics(c, "They send troops to Kyiv.") == {"t"}  # OR: D instead of C
    assert topics(c, "They send troops to Poland.") == set()  # AND: no C or D
    assert topics(c, "They send Russian troops to Ukraine.") == set()  # NOT


def test_exclusion_context_drops_hits_nearby() -> None:
    c = make(
        {
            "rules": [{"id": "r", "anchor": "W", "with": ["S"]}],
            "exclude": [{"context": "Y", "drops": ["W"]}],
        },
        {
            "W": {"any": ["tomahawk*"]},
            "S": {"en": ["fired"]},
            "Y": {"en": ["houthi*", "yemen"]},
        },
    )
    assert topics(c, "Warships fired Tomahawks at Houthi radars.") == set()
    assert topics(c, "The Houthis protested. Ukraine fired Tomahawks at Bryansk.") == {"t"}


def test_weights_threshold_and_count() -> None:
    c = make(
        {"threshold": 1.0, "rules": [{"id": "r", "anchor": "A", "with": ["B"], "max_count": 2}]},
        {"A": {"en": {"personnel": 0.5, "troops": 1}}, "B": {"en": ["ukraine"]}},
    )
    assert topics(c, "Personnel in Ukraine.") == set()  # 0.5 < threshold
    assert topics(c, "Personnel in Ukraine. More personnel in Ukraine.") == {"t"}
    match = c.classify("Troops in Ukraine. Troops in Ukraine. Troops in Ukraine.").topics[0]
    assert match.score == 2.0  # max_count caps the count
    assert match.groups == ("A", "B")


def test_the_strongest_anchor_of_a_sentence_counts() -> None:
    c = make(
        {"rules": [{"id": "r", "anchor": "A", "with": ["B"]}]},
        {"A": {"en": {"personnel": 0.5, "instructors": 1}}, "B": {"en": ["ukraine"]}},
    )
    match = c.classify("Military personnel and instructors will go to Ukraine.").topics[0]
    assert match.score == 1.0


def test_attribute_is_first_with_a_hit_in_the_fired_sentences() -> None:
    c = make(
        {
            "rules": [{"id": "r", "anchor": "A"}],
            "attributes": [
                {"value": "denied", "any": ["NO"]},
                {"value": "proposed", "any": ["MAY"]},
            ],
        },
        {"A": {"en": ["troops"]}, "NO": {"en": ["not"]}, "MAY": {"en": ["may"]}},
    )
    assert c.classify("We may send troops.").topics[0].attribute == "proposed"
    assert c.classify("We may not send troops.").topics[0].attribute == "denied"
    assert c.classify("Troops. We may not.").topics[0].attribute is None


def test_entities_are_canonical_and_deduplicated(shipped: Classifier) -> None:
    result = shipped.classify("ATACMS and Storm Shadow (SCALP-EG); again ATACMS, Путин and Putin.")
    names = [e.name for e in result.entities]
    assert names.count("ATACMS") == 1
    assert names.count("Storm Shadow/SCALP-EG") == 1
    assert names.count("Vladimir Putin") == 1
    assert {e.kind for e in result.entities if e.name == "ATACMS"} == {"weapon"}


def test_review_rules_flag_an_uncovered_language_with_a_lower_score() -> None:
    c = make(
        {
            "rules": [{"id": "r", "anchor": "W", "with": ["S"]}],
            "review": {"score": 0.4, "rules": [{"id": "rv", "anchor": "W", "with": ["C"]}]},
        },
        {"W": {"any": ["atacms"]}, "S": {"en": ["fired"]}, "C": {"any": ["ukraine"]}},
        languages=["en"],
    )
    text = "Ukraine atacms bilang tugon"
    flagged = c.classify(text, "tl").topics
    assert [(m.topic, m.score, m.review) for m in flagged] == [("t", 0.4, True)]
    assert {text[e.start : e.end] for e in flagged[0].evidence} == {"atacms", "Ukraine"}
    assert c.classify(text, "en").topics == ()  # a covered language: its own rules decide
    assert c.classify(text).topics == ()  # language not given: no review
    # The topic's own rules win over the review when they fire, in any language.
    own = c.classify("Ukraine fired atacms", "tl").topics[0]
    assert (own.score, own.review) == (1.0, False)


def test_shipped_review_rules_on_languages_without_rules(shipped: Classifier) -> None:
    tagalog = ("Nagbabala si Putin na ang paggamit ng Storm Shadow laban sa Russia ay isang gawa "
               "ng digmaan.")
    strike = shipped.classify(tagalog, "tl").topics
    assert [(m.topic, m.review) for m in strike] == [("long_range_strike", True)]
    assert strike[0].score < shipped.rules.topics["long_range_strike"].threshold
    swahili = "Rais Macron alisema NATO inaweza kutuma kontingenti ya wanajeshi nchini Ukraine."
    troops = shipped.classify(swahili, "sw").topics
    assert [(m.topic, m.review) for m in troops] == [("troop_deployment", True)]
    # Tomahawks on the Houthis are another war, in any language.
    houthis = "Marekani ilirusha makombora ya Tomahawk dhidi ya Houthi nchini Yemen."
    assert shipped.classify(houthis, "sw").topics == ()


# --- evidence ------------------------------------------------------------------------------


def test_evidence_offsets_point_into_the_original_text(shipped: Classifier) -> None:
    text = (
        "Die Ukraine darf die Storm-Shadow-Marschflugkörper  nun auch gegen Ziele auf "
        "russischem Territorium einsetzen, sagte ein Sprecher. Straße."
    )
    match = shipped.classify(text, "de").topics[0]
    assert match.topic == "long_range_strike"
    assert match.evidence
    for ev in match.evidence:
        surface = normalize(text[ev.start : ev.end]).text
        assert surface.startswith(normalize(ev.term.strip("*=")).text.strip())
        assert text[ev.start : ev.end] in ev.snippet
    assert any(text[e.start : e.end] == "Storm-Shadow" for e in match.evidence)


def test_evidence_with_a_title_refers_to_the_document(shipped: Classifier) -> None:
    title = "Biden allows ATACMS strikes"
    text = "The White House lets Ukraine fire ATACMS at targets inside Russia."
    document = Classifier.document(text, title)
    assert document == title + "\n\n" + text
    match = shipped.classify(text, "en", title=title).topics[0]
    spans = {document[e.start : e.end] for e in match.evidence}
    assert "ATACMS" in spans
    assert any(e.start >= len(title) + 2 for e in match.evidence)


# --- the shipped rules -----------------------------------------------------------------------


def seed_texts() -> list[tuple[Path, str]]:
    # The seed lives beside the repository (../shared). Its absence is a broken checkout, not
    # a reason to skip: fail loudly.
    assert SEEDS.is_dir(), f"seed directory missing: {SEEDS}"
    files = sorted(SEEDS.glob("*.txt"))
    assert files, f"no seed articles in {SEEDS}"
    return [(f, f.read_text(encoding="utf-8")) for f in files]


def test_seed_article_has_both_topics_with_evidence_from_its_german_text(
    shipped: Classifier,
) -> None:
    for path, text in seed_texts():
        footer = text.find("Bild: KI")
        body = text[:footer] if footer > 0 else text
        result = shipped.classify(text, "de")
        found = {m.topic: m for m in result.topics}
        assert set(found) == {"troop_deployment", "long_range_strike"}, path
        for match in found.values():
            assert match.evidence, (path, match.topic)
            for ev in match.evidence:
                assert ev.end <= len(body), "evidence must come from the article, not the footer"
                assert normalize(text[ev.start : ev.end]).text  # a real span
        troops = {text[e.start : e.end] for e in found["troop_deployment"].evidence}
        assert "Truppen" in troops
        strikes = {text[e.start : e.end] for e in found["long_range_strike"].evidence}
        assert {"ATACMS", "Storm Shadow"} & strikes
        # The newsletter footer changes nothing.
        assert {m.topic for m in shipped.classify(body, "de").topics} == set(found)
        names = {e.name for e in result.entities}
        assert {"ATACMS", "Storm Shadow/SCALP-EG", "Oreshnik", "Emmanuel Macron"} <= names


def test_shipped_rules_cover_the_eight_languages() -> None:
    rules = load_rules(TOPICS)
    for group in (
        "TROOPS",
        "DEPLOY",
        "UKRAINE",
        "WESTERN",
        "LR_GENERIC",
        "STRIKE",
        "PERMISSION",
        "SUPPLY",
        "RUSSIA_TARGET",
    ):
        missing = set(LANGUAGES) - set(rules.groups[group].terms)
        assert not missing, (group, missing)
    assert set(rules.topics) == {"troop_deployment", "long_range_strike"}


# Achieved 1.0 / 1.0 on both topics when this floor was set; the margin lets a rule change
# trade one or two items without silently eroding quality.
GOLD_FLOOR = {"precision": 0.95, "recall": 0.95, "f1": 0.95}


def assert_floor(report: EvalReport) -> None:
    """Every topic at GOLD_FLOOR, and F1 >= 0.8 for every topic in every language."""
    for topic, scores in report.topics.items():
        for metric, floor in GOLD_FLOOR.items():
            assert getattr(scores, metric) >= floor, (topic, metric, report.format_text())
    for lang, by_topic in report.languages.items():
        for topic, scores in by_topic.items():
            assert scores.f1 >= 0.8, (lang, topic, report.format_text())


def test_gold_set_floor(shipped: Classifier) -> None:
    records = read_records(GOLD)
    assert len(records) >= 150
    assert {r.lang for r in records} >= set(LANGUAGES)
    report = evaluate(shipped, records, topics=("troop_deployment", "long_range_strike"))
    assert_floor(report)


LANGUAGE_GOLD = REPO / "tests" / "gold" / "langs"


def test_every_language_beyond_the_first_eight_has_its_gold_set() -> None:
    rules = load_rules(TOPICS)
    for lang in set(rules.languages) - set(LANGUAGES):
        records = read_records(LANGUAGE_GOLD / f"{lang}.jsonl")
        assert len(records) >= 4, lang
        assert {r.lang for r in records} == {lang}
        labels = [r.labels for r in records]
        assert any("troop_deployment" in lab for lab in labels), lang
        assert any("long_range_strike" in lab for lab in labels), lang
        assert any(not lab for lab in labels), f"{lang}: no hard negative"


def test_language_gold_sets_floor(shipped: Classifier) -> None:
    records = [r for path in sorted(LANGUAGE_GOLD.glob("*.jsonl")) for r in read_records(path)]
    report = evaluate(shipped, records, topics=("troop_deployment", "long_range_strike"))
    assert_floor(report)


# --- validation ------------------------------------------------------------------------------

MINIMAL = """
groups:
  A: {terms: {en: [troops]}}
topics:
  t:
    rules:
      - {id: r, anchor: A}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_file_loads(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, MINIMAL)).topics["t"].threshold == 1.0


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("    rules:", "    thresold: 1\n    rules:"), "topics.t.thresold"),
        (("[troops]", "[troops, 'a*b']"), "groups.A.terms.en"),
        (("[troops]", "[troops, no]"), "groups.A.terms.en"),
        (("{en: [troops]}", "{English: [troops]}"), "groups.A.terms.English"),
        (("anchor: A}", "anchor: B}"), "topics.t.rules.0.anchor"),
        (
            ("anchor: A}", "anchor: A, with: [{group: A, near: five words}]}"),
            "topics.t.rules.0.with.0.near",
        ),
        (("anchor: A}", "anchor: A, without: [{any: [A, C]}]}"), "topics.t.rules.0.without.0"),
        (("anchor: A}", "anchor: A, weight: 0}"), "topics.t.rules.0.weight"),
        (("    rules:", "    review: {rules: [{id: v, anchor: X}]}\n    rules:"),
         "topics.t.review.rules.0.anchor"),
    ],
)
def test_errors_name_file_and_dotted_key(tmp_path: Path, change: tuple[str, str], key: str) -> None:
    old, new = change
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message, message


SPLIT = """
languages: [en, de]
terms: terms
groups:
  A: {doc: troops}
  B: {doc: Ukraine}
topics:
  t:
    rules:
      - {id: r, anchor: A, with: [B]}
entities:
  - {name: NATO, kind: organisation}
"""


def write_split(tmp_path: Path, files: dict[str, str], topics: str = SPLIT) -> Path:
    """A rule file whose terms sit in ``terms/<lang>.yaml`` files."""
    (tmp_path / "terms").mkdir()
    for name, text in files.items():
        (tmp_path / "terms" / name).write_text(text, encoding="utf-8")
    return write(tmp_path, topics)


def test_language_files_merge_into_the_groups_and_entities(tmp_path: Path) -> None:
    path = write_split(
        tmp_path,
        {
            "en.yaml": "groups:\n  A: {troops: 1, personnel: 0.5}\n  B: [ukraine]\n",
            "de.yaml": "groups:\n  A: [truppen]\n  B: [ukraine]\n",
            "any.yaml": "entities:\n  NATO: [nato]\n",
        },
    )
    rules = load_rules(path)
    assert rules.groups["A"].terms == {
        "en": {"troops": 1.0, "personnel": 0.5},
        "de": {"truppen": 1.0},
    }
    assert rules.entities[0].terms == {"any": {"nato": 1.0}}
    # "any" first, then the declared languages in order: the order terms are compiled in.
    assert list(rules.groups["B"].terms) == ["en", "de"]
    c = Classifier(rules)
    assert topics(c, "Truppen für die Ukraine") == {"t"}
    assert [e.name for e in c.classify("NATO").entities] == ["NATO"]


@pytest.mark.parametrize(
    ("files", "where", "key"),
    [
        ({"de.yaml": "groups:\n  NOPE: [x]\n"}, "terms/de.yaml", "groups.NOPE"),
        ({"de.yaml": "entities:\n  OTAN: [x]\n"}, "terms/de.yaml", "entities.OTAN"),
        ({"de.yaml": "groups:\n  A: [truppen, 'a*b']\n"}, "terms/de.yaml", "groups.A"),
        ({"de.yaml": "groups:\n  A: [truppen, no]\n"}, "terms/de.yaml", "groups.A"),
        ({"de.yaml": "gruppen:\n  A: [truppen]\n"}, "terms/de.yaml", "gruppen"),
        ({"German.yaml": "groups:\n  A: [truppen]\n"}, "terms/German.yaml", "language code"),
        ({"de.yaml": "groups:\n  A: [truppen]\n  A: [soldaten]\n"}, "terms/de.yaml",
         "duplicate key"),
    ],
)
def test_language_file_errors_name_the_file_and_key(
    tmp_path: Path, files: dict[str, str], where: str, key: str
) -> None:
    base = {"en.yaml": "groups:\n  A: [troops]\n  B: [ukraine]\n"}
    path = write_split(tmp_path, {**base, **files})
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(tmp_path / where) in message, message
    assert key in message, message


def test_a_language_given_inline_and_in_its_file_is_an_error(tmp_path: Path) -> None:
    topics_text = SPLIT.replace("A: {doc: troops}", "A: {doc: troops, terms: {en: [troops]}}")
    path = write_split(tmp_path, {"en.yaml": "groups:\n  A: [soldiers]\n  B: [ukraine]\n"},
                       topics_text)
    with pytest.raises(ConfigError, match=r"terms/en\.yaml: groups\.A: also given inline"):
        load_rules(path)


def test_an_empty_terms_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"terms: no <language>\.yaml files"):
        load_rules(write_split(tmp_path, {}))


def test_every_declared_language_has_its_own_file() -> None:
    rules = load_rules(TOPICS)
    terms = TOPICS.parent / "terms"
    assert {f.stem for f in terms.glob("*.yaml")} >= {*rules.languages, "any"}


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


# --- pickling (Beam pickles DoFns) ------------------------------------------------------------


def test_classifier_survives_pickling(shipped: Classifier) -> None:
    text = "Macron did not rule out sending Western troops to Ukraine."
    clone = pickle.loads(pickle.dumps(shipped))
    assert clone.classify(text) == shipped.classify(text)
    assert len(pickle.dumps(shipped)) < 2_000_000


def test_shipped_rule_file_has_no_duplicate_keys() -> None:
    # YAML keeps the last of two equal keys silently; in a term mapping that hides an edit.
    duplicates: list[tuple[object, int]] = []

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> object:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                duplicates.append((key, key_node.start_mark.line + 1))
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load(TOPICS.read_text(encoding="utf-8"), Loader=Loader)  # a SafeLoader subclass
    assert not duplicates


# --- many languages, one automaton ----------------------------------------------------------

#: Groups whose hits stop a rule (``without``, ``exclude``), and groups that make one.
BLOCKING = ("NONWESTERN", "OTHER_PLACE", "TRAINING_ABROAD", "EXCLUDED_THEATRE", "DRONE",
            "NONWESTERN_ARMS")
TOPICAL = ("UKRAINE", "UKRAINE_IN", "WESTERN", "TROOPS", "TROOPS_STRONG", "LR_NAMED")


def test_no_language_blocks_the_topic_words_of_another() -> None:
    # Every term applies to every text, and accents fold away: Latvian ukraiņ* ("Ukrainian")
    # folds to ukrain* and would read "Ukraine" in any language as an owner who is not
    # Western. A single word that names Ukraine, a Western actor, troops or a weapon in one
    # language must not be a blocking word in any.
    rules = load_rules(TOPICS)
    blocking = {
        lang: {t: w for g in BLOCKING for t, w in rules.groups[g].terms.get(lang, {}).items()}
        for lang in {lang for g in BLOCKING for lang in rules.groups[g].terms}
    }
    blocker = Classifier(RuleSet.model_validate({
        "groups": {"B": {"terms": {lang: terms for lang, terms in blocking.items() if terms}}},
        "topics": {"blocked": {"rules": [{"id": "b", "anchor": "B"}]}},
    }))
    clashes = []
    for group in TOPICAL:
        for lang, terms in rules.groups[group].terms.items():
            for term in terms:
                word = term.lstrip("=").strip("*")
                if " " in word:
                    continue
                match = blocker.classify(word).topics
                if match:
                    clashes.append(f"{group}.{lang}: {term} <- {match[0].evidence[0].term}")
    assert not clashes, clashes
