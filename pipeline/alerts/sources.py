"""Who reports a story: an alert's sources summary and its corroboration. Pure logic.

``sources_line`` is the line an analyst reads first ("3 sources: 2 wires (GB, FR), 1 Russian
state-affiliated"); ``corroboration`` says whether enough independent sources report the story
for a rule that holds its notifications until they do (``CorroborationRule`` in alerts.yaml).

Independence: sources count as independent when they differ pairwise in every label the rule
names in ``distinct`` (owner, country, kind). TASS and RIA Novosti share the owner "Russian
government", so under ``distinct: [owner]`` they are one voice; Reuters (GB) and the BBC (GB)
are two under ``[owner]`` and one under ``[owner, country]``. A label a source lacks is
taken as its own (an unlabelled source differs from every other): ``newsmon config check``
warns about such sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from newsmon.config import StrictModel
from newsmon.models import Corroboration, SourceKind, SourceRef

Label = Literal["owner", "country", "kind"]

#: (singular, plural) of each kind in the sources line.
_NOUNS: dict[SourceKind | None, tuple[str, str]] = {
    SourceKind.WIRE: ("wire", "wires"),
    SourceKind.PUBLIC_BROADCASTER: ("public broadcaster", "public broadcasters"),
    SourceKind.COMMERCIAL: ("commercial outlet", "commercial outlets"),
    SourceKind.STATE_AFFILIATED: ("state-affiliated", "state-affiliated"),
    SourceKind.GOVERNMENT_MILITARY: ("government/military", "government/military"),
    SourceKind.THINK_TANK: ("think tank", "think tanks"),
    SourceKind.OSINT_CHANNEL: ("OSINT channel", "OSINT channels"),
    SourceKind.BLOG: ("blog", "blogs"),
    None: ("unlabelled", "unlabelled"),
}

#: Adjectives for "1 Russian state-affiliated". CLDR (babel) has country names but no
#: demonyms, so the countries newsmon's shipped sources come from are written out here; any
#: other country shows its code in brackets instead ("1 wire (JP)").
DEMONYMS: dict[str, str] = {
    "BE": "Belgian", "BY": "Belarusian", "CN": "Chinese", "DE": "German", "ES": "Spanish",
    "FR": "French", "GB": "British", "IL": "Israeli", "IR": "Iranian", "IT": "Italian",
    "LV": "Latvian", "NL": "Dutch", "PL": "Polish", "QA": "Qatari", "RU": "Russian",
    "TR": "Turkish", "UA": "Ukrainian", "US": "American",
}

#: Independent sources are counted up to this many: beyond it the number tells nothing more
#: and the search for the largest independent set stays small.
MAX_COUNTED = 10


class CorroborationRule(StrictModel):
    """A story alert notifies only once ``min_sources`` independent sources report the
    story: sources differing pairwise in every label of ``distinct``. When corroboration
    arrives the alert is marked corroborated and notifies (``notify_before``: the first copy
    notifies too, and corroboration notifies once more)."""

    min_sources: int = Field(default=2, ge=2, le=MAX_COUNTED)
    distinct: tuple[Label, ...] = ("owner",)
    notify_before: bool = False

    @field_validator("distinct")
    @classmethod
    def _labels(cls, value: tuple[Label, ...]) -> tuple[Label, ...]:
        if not value:
            raise ValueError("name at least one label: owner, country or kind")
        if len(set(value)) != len(value):
            raise ValueError(f"a label named twice: {', '.join(value)}")
        return value


#: The criterion an alert is measured by when its rule requires none (reported, not held).
DEFAULT_CRITERION = CorroborationRule()


def unique_sources(sources: Iterable[SourceRef]) -> list[SourceRef]:
    """Each source once (by id), in the order first seen."""
    seen: dict[str, SourceRef] = {}
    for source in sources:
        seen.setdefault(source.id, source)
    return list(seen.values())


def sources_line(sources: Iterable[SourceRef]) -> str:
    """"3 sources: 2 wires (GB, FR), 1 Russian state-affiliated": the sources grouped by kind,
    the biggest group first, each with its countries (an adjective when it has one)."""
    unique = unique_sources(sources)
    groups: dict[SourceKind | None, list[SourceRef]] = {}
    for source in unique:
        groups.setdefault(source.kind, []).append(source)
    parts = []
    for kind, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        singular, plural = _NOUNS[kind]
        noun = singular if len(members) == 1 else plural
        countries = list(dict.fromkeys(s.country for s in members if s.country))
        if len(countries) == 1 and countries[0] in DEMONYMS:
            parts.append(f"{len(members)} {DEMONYMS[countries[0]]} {noun}")
        elif countries:
            parts.append(f"{len(members)} {noun} ({', '.join(countries)})")
        else:
            parts.append(f"{len(members)} {noun}")
    count = len(unique)
    return f"{count} source{'' if count == 1 else 's'}: {', '.join(parts)}" if count else (
        "no sources")


def _label(source: SourceRef, label: Label) -> str:
    # A missing label is the source's own: it never makes two sources one voice.
    if label == "owner":
        value = source.owner.casefold()
    elif label == "country":
        value = source.country
    else:
        value = source.kind.value if source.kind else ""
    return value or f"\x00{source.id}"


def independent_sources(sources: Iterable[SourceRef], distinct: Sequence[Label],
                        cap: int = MAX_COUNTED) -> int:
    """The size of the largest set of sources differing pairwise in every label of
    ``distinct``, counted up to ``cap``.

    One label: the number of its distinct values. Several: a search over the sources' label
    tuples, pruned by the bound "chosen + fewest distinct values left in any label".
    """
    rows = sorted({tuple(_label(s, label) for label in distinct)
                   for s in unique_sources(sources)})
    if len(distinct) == 1:
        return min(len(rows), cap)
    best = 0

    def search(chosen: int, candidates: list[tuple[str, ...]]) -> None:
        nonlocal best
        best = max(best, chosen)
        if best >= cap or not candidates:
            return
        bound = min(len({row[i] for row in candidates}) for i in range(len(distinct)))
        if chosen + bound <= best:
            return
        first, rest = candidates[0], candidates[1:]
        search(chosen + 1, [r for r in rest if all(a != b for a, b in zip(r, first,
                                                                          strict=True))])
        search(chosen, rest)

    search(0, rows)
    return min(best, cap)


def corroboration(sources: Iterable[SourceRef], rule: CorroborationRule | None,
                  previous: Corroboration | None, now: datetime) -> Corroboration:
    """The corroboration of an alert with these sources under its rule's criterion (the
    default one, reported but not required, for a rule without). Once met it stays met, with
    the time it was first met (``now``: when the copy that met it was first seen)."""
    criterion = rule or DEFAULT_CRITERION
    independent = independent_sources(sources, criterion.distinct)
    met_at = previous.corroborated_at if previous is not None else None
    if met_at is None and independent >= criterion.min_sources:
        met_at = now
    return Corroboration(required=rule is not None, min_sources=criterion.min_sources,
                         distinct=criterion.distinct, independent=independent,
                         corroborated_at=met_at)
