"""Labelled sources and corroboration through the real alert path (backfill -> real search
server -> a real local webhook): the labels reach the article and alert documents, a rule
requiring corroboration holds its alert until independent sources report the story, then
escalates once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from newsmon.config import SearchSettings, Settings
from newsmon.models import RawItem, SourceKind, SourceRef
from newsmon.pipeline.alerts.channels.webhook import WebhookChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig
from newsmon.pipeline.alerts.sources import CorroborationRule
from newsmon.pipeline.app import RunContext
from newsmon.pipeline.jobs import run_backfill
from tests.alertservers import Recorder
from tests.localhttp import serve
from tests.pipeline.alerts.test_integration import alerts_of, archive
from tests.pipeline.samples import NOW, REWRITE, WIRE

ROOT = Path(__file__).resolve().parents[3]

TASS = SourceRef(id="tass-en", type="rss", name="TASS", lang="en", country="RU",
                 kind=SourceKind.STATE_AFFILIATED, owner="Russian government")
RIA = SourceRef(id="ria", type="rss", name="RIA Novosti", lang="en", country="RU",
                kind=SourceKind.STATE_AFFILIATED, owner="Russian government")
REUTERS = SourceRef(id="reuters", type="rss", name="Reuters", lang="en", country="GB",
                    kind=SourceKind.WIRE, owner="Thomson Reuters")
AFP = SourceRef(id="afp", type="rss", name="AFP", lang="en", country="FR",
                kind=SourceKind.WIRE, owner="Agence France-Presse")


#: Its own wording (an exact copy of another source's text is not stored as an article).
REUTERS_TEXT = REWRITE + " Reuters could not independently verify the claims."


def copy(source: SourceRef, text: str, minutes: int) -> RawItem:
    seen = NOW + timedelta(minutes=minutes)
    return RawItem.make(source=source, guid=f"{source.id}-1",
                        url=f"https://{source.id}.example/atacms",
                        title="ATACMS strike on Kursk airfield", summary=text,
                        published_at=seen, first_seen_at=seen)


@dataclass(frozen=True)
class Desk:
    """A run context whose one rule ("lrs") requires corroboration, delivering to a live
    webhook (``hook``), and the search server it writes to."""

    ctx: RunContext
    hook: Recorder
    search: SearchSettings
    tmp: Path

    def backfill(self, name: str, *items: RawItem) -> None:
        run_backfill(archive(self.tmp, list(items), name), self.ctx, progress=False)

    def the_alert(self) -> dict[str, object]:
        (alert,) = [a for a in alerts_of(self.search) if a["rule"] == "lrs"]
        return alert


@pytest.fixture
def desk(request: pytest.FixtureRequest, tmp_path: Path,
         search_settings: SearchSettings) -> Iterator[Desk]:
    """The desk; ``notify_before`` of the rule's corroboration is the (indirect) parameter."""
    rule = AlertRule(name="lrs", topic="long_range_strike", channels=("hook",),
                     corroboration=CorroborationRule(min_sources=2, distinct=("owner", "country"),
                                                     notify_before=request.param))
    settings = Settings(state_dir=tmp_path / "state", topics=ROOT / "config" / "topics.yaml",
                        search=search_settings)
    recorder = Recorder()
    with serve({"/hook": recorder}) as srv:
        hook = WebhookChannel(url=srv.url("/hook"), timeout_s=2, attempts=2)
        alerts = AlertsConfig(channels={"hook": hook}, rules=(rule,))
        ctx = RunContext(settings=settings, alerts=alerts, now=NOW + timedelta(hours=1))
        yield Desk(ctx, recorder, search_settings, tmp_path)


@pytest.mark.integration
@pytest.mark.parametrize("desk", [False], indirect=True)
def test_an_alert_waits_for_corroboration_then_escalates_once(desk: Desk) -> None:
    recorder, search_settings = desk.hook, desk.search
    # Two Russian state outlets of one owner: two sources, one voice. Held.
    desk.backfill("a.jsonl", copy(TASS, WIRE, 0), copy(RIA, REWRITE, 5))
    alert = desk.the_alert()
    assert alert["sources_line"] == "2 sources: 2 Russian state-affiliated"
    assert alert["corroborated"] is False and alert["pending"] == []
    assert alert["corroboration"] == {"required": True, "min_sources": 2,
                                      "distinct": ["owner", "country"], "independent": 1,
                                      "corroborated_at": None}
    assert alert["source_kinds"] == ["state_affiliated"] and alert["source_countries"] == ["RU"]
    assert recorder.bodies == []

    # A wire of another owner and country: corroborated, and notified now.
    desk.backfill("b.jsonl", copy(REUTERS, REUTERS_TEXT, 10))
    alert = desk.the_alert()
    assert alert["corroborated"] is True and alert["notified"] == ["hook"]
    corroboration = alert["corroboration"]
    assert isinstance(corroboration, dict) and corroboration["independent"] == 2
    assert corroboration["corroborated_at"] is not None
    assert alert["sources_line"] == "3 sources: 2 Russian state-affiliated, 1 British wire"
    assert len(recorder.bodies) == 1
    sent = recorder.bodies[0]["alert"]
    assert sent["sources_line"] == "3 sources: 2 Russian state-affiliated, 1 British wire"
    assert sent["corroborated"] is True

    # Once corroborated, the story grows as any other: the webhook gets an update.
    desk.backfill("c.jsonl", copy(AFP, WIRE, 15))
    alert = desk.the_alert()
    assert alert["sources_line"] == ("4 sources: 2 Russian state-affiliated, "
                                     "2 wires (GB, FR)")
    assert [b["event"] for b in recorder.bodies] == ["alert.created", "alert.updated"]
    assert recorder.bodies[1]["alert"]["sources_line"] == alert["sources_line"]

    # The labels are on the article documents, flat, as keywords a filter can use.
    index = f"{search_settings.index_prefix}-articles"
    httpx.post(f"{search_settings.url}/{index}/_refresh", timeout=30)
    found = httpx.post(f"{search_settings.url}/{index}/_search", timeout=30, json={
        "query": {"bool": {"filter": [{"term": {"source_kind": "wire"}},
                                      {"term": {"source_country": "GB"}}]}}}).json()
    docs = [h["_source"] for h in found["hits"]["hits"]]
    assert [(d["source_name"], d["source_owner"], d["source"]["owner"]) for d in docs] == [
        ("Reuters", "Thomson Reuters", "Thomson Reuters")]


@pytest.mark.integration
@pytest.mark.parametrize("desk", [True], indirect=True)
def test_notify_before_notifies_the_first_copy_and_once_more_on_corroboration(
    desk: Desk,
) -> None:
    recorder = desk.hook
    desk.backfill("a.jsonl", copy(TASS, WIRE, 0))
    assert len(recorder.bodies) == 1 and desk.the_alert()["corroborated"] is False
    # Same owner: the story grew (a webhook hears of every growth), still uncorroborated.
    desk.backfill("b.jsonl", copy(RIA, REWRITE, 5))
    assert [b["alert"]["corroborated"] for b in recorder.bodies] == [False, False]
    desk.backfill("c.jsonl", copy(REUTERS, REWRITE, 10))
    alert = desk.the_alert()
    assert alert["corroborated"] is True and alert["notified"] == ["hook"]
    # The escalation: an update that says the story is now corroborated.
    assert [(b["event"], b["alert"]["corroborated"]) for b in recorder.bodies] == [
        ("alert.created", False), ("alert.updated", False), ("alert.updated", True)]
    assert [d["status"] for d in alert["deliveries"]] == ["sent", "sent", "sent"]
