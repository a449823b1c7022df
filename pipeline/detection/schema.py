"""The topic-rule language, the schema of a rule file and its loader: weighted multilingual
terms, proximity, a threshold.

Analysts know the model from the Europe Media Monitor's category definitions. A rule file
(``config/topics.yaml``, validated into the models below) has three parts; with ``terms: DIR``
the terms of each language come from ``DIR/<lang>.yaml`` instead (``LanguageTerms``: that
language's terms for every group and entity), merged by ``load_rules``:

``groups``
    Named concepts (``TROOPS``, ``DEPLOY``, ``UKRAINE``, ``LONG_RANGE_WEAPON``, ...). Each lists
    terms per language (``en``, ``de``, ...; ``any`` for names written alike everywhere), either
    as a list (weight 1) or as a mapping ``term: weight``. A group is an OR of its terms.

``topics``
    Each topic has ``rules``, optional ``exclude`` contexts, optional ``attributes`` and a
    ``threshold``. A rule is anchored on a group: every hit of an ``anchor`` group is checked
    for ``with`` clauses (AND; a clause is a group or ``any: [groups]``, an OR) and ``without``
    clauses (NOT), each within a distance of the anchor: ``N words`` (``N words before``,
    ``N words after``), ``sentence`` (the same sentence), ``N sentences`` (a window of N
    consecutive sentences) or ``article``. Word distances count words between the first words
    of the two hits. A firing
    scores ``rule.weight * min(term weights involved)``; a rule fires at most once per sentence
    and at most ``max_count`` times. The topic score is the sum over its rules, and the topic is
    reported when the score reaches ``threshold``. An ``exclude`` context drops hits of some
    groups near a hit of another (Tomahawk near Houthis or Yemen; troops next to "to Poland").
    ``review`` rules (``ReviewDef``) run for articles in a language without rules.

``entities``
    Canonical names (weapon systems, countries, leaders) with their terms; reported whenever seen.

Term syntax (written in any case and with or without accents; it is normalized like the text):

- ``troops`` a whole word; ``boots on the ground`` an exact phrase (hyphens count as spaces);
- ``войск*`` a prefix: the word may continue (``войска``, ``войсками``);
- ``*truppen`` a suffix: the word may start earlier (German compounds: ``Bodentruppen``);
- ``*flugkorper*`` anywhere inside a word;
- ``=US`` case-sensitive: matches ``US`` but not the pronoun ``us``;
- a term in a script written without spaces (Chinese, Japanese, Thai) has no word boundaries
  to respect: ``ストームシャドー`` matches inside ``英国がストームシャドーを供与``, and ``atacms``
  inside ``米国はATACMSを`` (wildcards add nothing there; see ``text.is_unspaced``).

Matching is one Aho-Corasick pass (pyahocorasick) over the normalized text of the whole rule
set (all topics, all languages, entities), built once per ``Classifier``. Terms of every language
apply to every article (``match_all_languages: true``, the default) because language detection
on short or mixed texts is unreliable and the terms of different languages rarely collide.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from newsmon.configfile import ConfigError, read_yaml, validate
from newsmon.pipeline.detection.text import (
    normalize,
)


class _Model(BaseModel):
    # No inf/nan: `.inf` is valid YAML and passes `gt=0`; an infinite score is no JSON a search
    # server takes.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)


# --- the rule file ---------------------------------------------------------------------------

_NEAR_RE = re.compile(r"^\s*(?:(\d+)\s+)?(words?|sentences?|article)(?:\s+(before|after))?\s*$")


def _parse_near(value: Any) -> Any:
    """``"sentence"``, ``"2 sentences"``, ``"8 words"``, ``"2 words before"``, ``"article"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"unit": "words", "size": value}
    if not isinstance(value, str):
        return value
    match = _NEAR_RE.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a distance: use 'N words', 'N words before', 'N words after',"
            " 'sentence', 'N sentences' or 'article'"
        )
    size, unit, side = match.groups()
    unit = {"word": "words", "sentence": "sentences"}.get(unit, unit)
    if unit == "words" and size is None:
        raise ValueError(f"{value!r}: say how many words, e.g. '8 words'")
    if side and unit != "words":
        raise ValueError(f"{value!r}: 'before'/'after' only go with words")
    return {"unit": unit, "size": int(size or 1), "side": side or "both"}


class Near(_Model):
    """How far a clause's hit may be from the anchor hit (``side``: where, for words)."""

    unit: Literal["words", "sentences", "article"]
    size: int = Field(default=1, ge=0)
    side: Literal["both", "before", "after"] = "both"

    def __str__(self) -> str:
        if self.unit == "article":
            return "article"
        if self.unit == "sentences" and self.size == 1:
            return "sentence"
        side = "" if self.side == "both" else f" {self.side}"
        return f"{self.size} {self.unit}{side}"


NearSpec = Annotated[Near, BeforeValidator(_parse_near)]
SAME_SENTENCE = Near(unit="sentences", size=1)

_LANG_RE = re.compile(r"^(?:[a-z]{2,3}|any)$")


def _check_term(term: str) -> str:
    body = term[1:] if term.startswith("=") else term
    core = body.strip("*")
    if "*" in core:
        raise ValueError(f"term {term!r}: '*' only at the start or end of a term")
    if not normalize(core).text.strip():
        raise ValueError(f"term {term!r} is empty once normalized")
    if term.startswith("=") and body != core:
        raise ValueError(f"term {term!r}: a case-sensitive term cannot have wildcards")
    return term


def _check_lang(lang: str) -> str:
    if not _LANG_RE.match(lang):
        raise ValueError(
            f"{lang!r} is not a language code (two or three lower-case letters, or 'any')"
        )
    return lang


def _terms_as_mapping(value: Any) -> Any:
    """A plain list of terms means weight 1 each."""
    if isinstance(value, list | tuple):
        return {term: 1.0 for term in value}
    return value


def _term_value(value: Any) -> Any:
    if isinstance(value, str):
        return _check_term(value)
    if isinstance(value, bool):  # YAML reads no/yes/on/off as booleans
        raise ValueError(f"term {value!r} is not a string: quote YAML words like 'no' or 'on'")
    return value


TermStr = Annotated[str, BeforeValidator(_term_value)]
LangCode = Annotated[str, BeforeValidator(lambda v: _check_lang(v) if isinstance(v, str) else v)]
TermWeights = Annotated[
    dict[TermStr, Annotated[float, Field(gt=0)]], BeforeValidator(_terms_as_mapping)
]


class GroupDef(_Model):
    """A concept: an OR over weighted terms in several languages."""

    doc: str = ""
    terms: dict[LangCode, TermWeights] = Field(min_length=1)


def _clause_from_str(value: Any) -> Any:
    return {"group": value} if isinstance(value, str) else value


class Clause(_Model):
    """One condition of a rule: a group (or any of several) within ``near`` of the anchor."""

    group: str | None = None
    any: tuple[str, ...] = ()
    #: Defaults to the rule's ``near``.
    near: NearSpec | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Clause:
        if (self.group is None) == (not self.any):
            raise ValueError("give exactly one of 'group' or 'any'")
        return self

    @property
    def groups(self) -> tuple[str, ...]:
        return (self.group,) if self.group is not None else self.any


ClauseSpec = Annotated[Clause, BeforeValidator(_clause_from_str)]


def _as_tuple(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


GroupNames = Annotated[tuple[str, ...], BeforeValidator(_as_tuple), Field(min_length=1)]


class Rule(_Model):
    """Anchor AND every ``with`` clause AND NOT any ``without`` clause, near the anchor."""

    id: str
    doc: str = ""
    anchor: GroupNames
    with_: tuple[ClauseSpec, ...] = Field(default=(), alias="with")
    without: tuple[ClauseSpec, ...] = ()
    near: NearSpec = SAME_SENTENCE
    weight: float = Field(default=1.0, gt=0)
    max_count: int = Field(default=3, ge=1)


class Exclusion(_Model):
    """Hits of ``drops`` groups within ``near`` of a ``context`` hit do not count for the topic."""

    doc: str = ""
    context: GroupNames
    drops: GroupNames
    near: NearSpec = SAME_SENTENCE


class AttributeDef(_Model):
    """An event attribute: the first one whose groups have a hit in a sentence that fired."""

    value: str
    any: GroupNames
    doc: str = ""


class ReviewDef(_Model):
    """Rules for articles in a language the file has no rules for (not in ``languages``).

    They use language-independent evidence (weapon names, NATO, countries in many scripts).
    When the topic's own rules do not reach its threshold and these reach ``threshold``, the
    topic is reported with ``review: true`` and the fixed, lower ``score``: a person should look.
    """

    doc: str = ""
    threshold: float = Field(default=1.0, gt=0)
    #: What a review match reports as its score: below the topic's threshold, so that alert
    #: rules at that threshold leave review matches out unless they ask for them.
    score: float = Field(default=0.5, gt=0)
    rules: tuple[Rule, ...] = Field(min_length=1)


class TopicDef(_Model):
    doc: str = ""
    threshold: float = Field(default=1.0, gt=0)
    #: At least one (checked with the references, so that a broken rule is not also reported
    #: as a missing one).
    rules: tuple[Rule, ...] = ()
    exclude: tuple[Exclusion, ...] = ()
    attributes: tuple[AttributeDef, ...] = ()
    review: ReviewDef | None = None


class EntityDef(_Model):
    name: str
    kind: Literal["weapon", "country", "leader", "organisation"]
    terms: dict[LangCode, TermWeights] = Field(min_length=1)


class RuleSet(_Model):
    """The whole rule file, as validated. Build a ``Classifier`` from it to match."""

    version: Literal[1] = 1
    #: The languages the file claims to cover (documentation and a completeness check).
    languages: tuple[LangCode, ...] = ()
    match_all_languages: bool = True
    #: At most this many evidence spans per topic (the strongest firings first).
    max_evidence: int = Field(default=12, ge=1)
    groups: dict[str, GroupDef] = Field(min_length=1)
    topics: dict[str, TopicDef] = Field(min_length=1)
    entities: tuple[EntityDef, ...] = ()


def reference_problems(rules: RuleSet) -> list[str]:
    """Dotted keys that name a group the file does not define, one problem per line."""
    known = set(rules.groups)
    problems: list[str] = []

    def check(key: str, names: Iterable[str]) -> None:
        problems.extend(f"{key}: unknown group {name!r}" for name in names if name not in known)

    for t_name, topic in rules.topics.items():
        base = f"topics.{t_name}"
        if not topic.rules:
            problems.append(f"{base}.rules: a topic needs at least one rule")
        rule_lists = [(f"{base}.rules", topic.rules)]
        if topic.review is not None:
            rule_lists.append((f"{base}.review.rules", topic.review.rules))
        for where, rule_list in rule_lists:
            for r_i, rule in enumerate(rule_list):
                check(f"{where}.{r_i}.anchor", rule.anchor)
                for kind, clauses in (("with", rule.with_), ("without", rule.without)):
                    for c_i, clause in enumerate(clauses):
                        check(f"{where}.{r_i}.{kind}.{c_i}", clause.groups)
        for e_i, exclusion in enumerate(topic.exclude):
            check(f"{base}.exclude.{e_i}.context", exclusion.context)
            check(f"{base}.exclude.{e_i}.drops", exclusion.drops)
        for a_i, attribute in enumerate(topic.attributes):
            check(f"{base}.attributes.{a_i}.any", attribute.any)
    for lang in rules.languages:
        if not any(lang in group.terms for group in rules.groups.values()):
            problems.append(f"languages: {lang!r} is declared but no group has terms for it")
    return problems


class LanguageTerms(_Model):
    """One language's file in the terms directory: its terms for groups and entities."""

    groups: dict[str, TermWeights] = Field(default_factory=dict)
    #: Keyed by the entity's canonical ``name``.
    entities: dict[str, TermWeights] = Field(default_factory=dict)


def rule_files(path: pathlib.Path) -> list[pathlib.Path]:
    """The files ``load_rules(path)`` reads: the rule file and, with ``terms: DIR``, the
    ``*.yaml`` files of that directory (what a cache of loaded rules must watch). A rule file
    that cannot be read gives just itself: ``load_rules`` then reports the problem."""
    try:
        data = read_yaml(path)
    except ConfigError:
        return [path]
    where = data.get("terms") if isinstance(data, dict) else None
    if not isinstance(where, str) or not where.strip():
        return [path]
    return [path, *sorted((path.parent / where).glob("*.yaml"))]


def _merge_term_files(data: dict[str, Any], path: pathlib.Path) -> dict[str, Any]:
    """``data`` (a rule file) with the terms of ``<terms>/<lang>.yaml`` merged into its groups
    and entities, so that the ``RuleSet`` looks as if every term were written inline.

    Each language file is validated on its own, so its errors name that file and the dotted
    key; a group or entity it names must exist in the rule file, and a language may not give
    terms for a group or entity both inline and in its file.
    """
    where = data.pop("terms")
    if not isinstance(where, str) or not where.strip():
        raise ConfigError([f"{path}: terms: give the directory of the language files"])
    directory = path.parent / where
    # "any" first, then the declared languages in their order, then the rest: on a tie
    # between two languages' terms for one word, evidence names the first.
    declared = data.get("languages")
    order = ["any", *(declared if isinstance(declared, list) else ())]
    files = sorted(
        directory.glob("*.yaml"),
        key=lambda f: (order.index(f.stem) if f.stem in order else len(order), f.stem),
    )
    if not files:
        raise ConfigError([f"{path}: terms: no <language>.yaml files in {directory}"])
    groups = data.get("groups")
    entities = data.get("entities")
    if not isinstance(groups, dict) or not isinstance(entities, list | None):
        return data  # the RuleSet validation reports the shape
    by_name = {e.get("name"): e for e in entities or () if isinstance(e, dict)}
    problems: list[str] = []
    for file in files:
        lang = file.stem
        try:
            _check_lang(lang)
        except ValueError as exc:
            problems.append(f"{file}: {exc}")
            continue
        try:
            terms = validate(LanguageTerms, read_yaml(file), file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for kind, targets, own in (
            ("groups", groups, terms.groups),
            ("entities", by_name, terms.entities),
        ):
            for name, weights in own.items():
                target = targets.get(name)
                if not isinstance(target, dict):
                    problems.append(f"{file}: {kind}.{name}: not defined in {path.name}")
                    continue
                inline = target.setdefault("terms", {})
                if not isinstance(inline, dict):
                    continue  # the RuleSet validation reports the shape
                if lang in inline:
                    problems.append(f"{file}: {kind}.{name}: also given inline in {path.name}")
                    continue
                inline[lang] = dict(weights)
    if problems:
        raise ConfigError(problems)
    return data


def load_rules(path: pathlib.Path) -> RuleSet:
    """Read and validate a rule file; raises ``ConfigError`` naming the file and dotted key.

    With ``terms: DIR`` the terms come from ``DIR/<lang>.yaml`` (relative to the rule file),
    one file per language (``any.yaml`` for names written alike everywhere).
    """
    data = read_yaml(path)
    if isinstance(data, dict) and "terms" in data:
        data = _merge_term_files(data, path)
    rules = validate(RuleSet, data, path)
    problems = reference_problems(rules)
    if problems:
        raise ConfigError([f"{path}: {problem}" for problem in problems])
    return rules


