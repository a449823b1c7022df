"""The sources line and the corroboration count (pipeline/alerts/sources.py), pure; and the
corroboration setting as alerts.yaml reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from newsmon.models import SourceKind, SourceRef
from newsmon.pipeline.alerts.config import AlertsConfig
from newsmon.pipeline.alerts.sources import (
    CorroborationRule,
    corroboration,
    independent_sources,
    sources_line,
)

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def src(sid: str, country: str, kind: SourceKind | None, owner: str = "") -> SourceRef:
    return SourceRef(id=sid, type="rss", name=sid, country=country, kind=kind, owner=owner)


REUTERS = src("reuters", "GB", SourceKind.WIRE, "Thomson Reuters")
AFP = src("afp", "FR", SourceKind.WIRE, "Agence France-Presse")
TASS = src("tass", "RU", SourceKind.STATE_AFFILIATED, "Russian government")
RIA = src("ria", "RU", SourceKind.STATE_AFFILIATED, "Russian government")
BBC = src("bbc", "GB", SourceKind.PUBLIC_BROADCASTER, "BBC")
KYODO = src("kyodo", "JP", SourceKind.WIRE, "Kyodo News")


def test_the_line_of_the_issue() -> None:
    assert sources_line([REUTERS, AFP, TASS]) == (
        "3 sources: 2 wires (GB, FR), 1 Russian state-affiliated")


@pytest.mark.parametrize(("sources", "line"), [
    ([], "no sources"),
    ([REUTERS], "1 source: 1 British wire"),
    ([REUTERS, REUTERS], "1 source: 1 British wire"),  # one source, however many copies
    ([KYODO], "1 source: 1 wire (JP)"),  # no adjective known: the code
    ([TASS, RIA, BBC], "3 sources: 2 Russian state-affiliated, 1 British public broadcaster"),
    ([src("x", "", None)], "1 source: 1 unlabelled"),
    ([src("x", "DE", None), src("y", "DE", None)], "2 sources: 2 German unlabelled"),
])
def test_the_line_groups_by_kind_biggest_first(sources: list[SourceRef], line: str) -> None:
    assert sources_line(sources) == line


@pytest.mark.parametrize(("sources", "distinct", "count"), [
    ([TASS, RIA], ("owner",), 1),  # one owner, one voice
    ([TASS, RIA, REUTERS], ("owner",), 2),
    ([REUTERS, BBC], ("owner",), 2),
    ([REUTERS, BBC], ("owner", "country"), 1),  # both British
    ([REUTERS, BBC, AFP], ("owner", "country"), 2),
    ([REUTERS, AFP, KYODO], ("kind",), 1),
    ([REUTERS, AFP, KYODO, TASS, BBC], ("owner", "country", "kind"), 3),
    # unlabelled owners count as their own: never merged into one voice
    ([src("a", "DE", None), src("b", "DE", None)], ("owner",), 2),
])
def test_independent_sources_differ_pairwise_in_every_label(
        sources: list[SourceRef], distinct: tuple[str, ...], count: int) -> None:
    assert independent_sources(sources, distinct) == count  # type: ignore[arg-type]


def test_the_largest_independent_set_is_found_not_the_first() -> None:
    # Greedy in sorted order would take (A, FR) first and then only one more; the best is
    # (A, GB), (B, FR), (C, DE).
    sources = [src("1", "FR", None, "A"), src("2", "GB", None, "A"), src("3", "FR", None, "B"),
               src("4", "DE", None, "C"), src("5", "FR", None, "C")]
    assert independent_sources(sources, ("owner", "country")) == 3


def test_the_count_is_capped() -> None:
    many = [src(f"s{i}", "GB", None, f"owner {i}") for i in range(30)]
    assert independent_sources(many, ("owner",), cap=10) == 10


def test_corroboration_is_met_once_and_stays_met() -> None:
    rule = CorroborationRule(min_sources=2, distinct=("owner", "country"))
    held = corroboration([TASS, RIA], rule, None, T0)
    assert (held.required, held.independent, held.corroborated_at) == (True, 1, None)
    met = corroboration([TASS, RIA, REUTERS], rule, held, T0 + timedelta(minutes=5))
    assert met.corroborated_at == T0 + timedelta(minutes=5)
    later = corroboration([TASS, RIA, REUTERS, AFP], rule, met, T0 + timedelta(hours=1))
    assert later.corroborated_at == met.corroborated_at and later.independent == 3
    # a rule without corroboration is measured by the default criterion, not held
    free = corroboration([REUTERS, AFP], None, None, T0)
    assert free.required is False and free.distinct == ("owner",) and free.corroborated_at == T0


def test_alerts_yaml_reads_and_checks_the_setting() -> None:
    config = AlertsConfig.model_validate({"rules": [
        {"name": "r", "topic": "t",
         "corroboration": {"min_sources": 3, "distinct": ["owner", "country"]}}]})
    assert config.rules[0].corroboration == CorroborationRule(
        min_sources=3, distinct=("owner", "country"))
    for bad, says in (({"min_sources": 1}, "greater than or equal to 2"),
                      ({"distinct": []}, "at least one label"),
                      ({"distinct": ["owner", "owner"]}, "named twice"),
                      ({"distinct": ["language"]}, "'owner', 'country' or 'kind'"),
                      ({"quorum": 2}, "Extra inputs")):
        with pytest.raises(ValidationError, match=says):
            AlertsConfig.model_validate(
                {"rules": [{"name": "r", "topic": "t", "corroboration": bad}]})


def test_the_documented_example_is_valid() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "corroboration.md").read_text()
    example = yaml.safe_load(doc.split("```yaml\n", 1)[1].split("```", 1)[0])
    config = AlertsConfig.model_validate({
        "channels": {"desk-hook": {"type": "webhook", "url": "https://hooks.example.org/x"}},
        **example})
    assert config.rules[0].corroboration == CorroborationRule(
        min_sources=2, distinct=("owner", "country"), notify_before=False)
