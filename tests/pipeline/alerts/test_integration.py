"""Alerts through the real pipeline on both real search servers, delivered to real local
receivers: one alert and one delivery per story across copies and re-runs (live and backfill),
a channel that is down delivered by the next run, a surge on a synthetic burst."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from newsmon.config import SearchSettings, Settings
from newsmon.models import RawItem, SourceRef
from newsmon.pipeline.alerts.channels.smtp import SmtpChannel
from newsmon.pipeline.alerts.channels.webhook import WebhookChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig, SurgeRule
from newsmon.pipeline.app import RunContext
from newsmon.pipeline.jobs import run_backfill
from newsmon.pipeline.store import DocumentStore, open_store
from tests.alertservers import Recorder, SmtpInbox, smtp_server
from tests.localhttp import serve
from tests.pipeline.alerts.test_surge import surge_contract
from tests.pipeline.samples import NOW, TROOPS, WIRE, story_items

ROOT = Path(__file__).resolve().parents[3]


def archive(tmp: Path, raw: list[RawItem], name: str = "archive.jsonl") -> Path:
    path = tmp / name
    path.write_bytes(b"\n".join(i.to_json() for i in raw) + b"\n")
    return path


def context(tmp: Path, search: SearchSettings, hook: str, inbox: SmtpInbox) -> RunContext:
    channels = {
        "hook": WebhookChannel(url=hook, timeout_s=2, attempts=2),
        "mail": SmtpChannel(host=inbox.host, port=inbox.port, tls="none",
                              sender="newsmon@example.org", to=("desk@example.org",)),
    }
    rules = (AlertRule(name="lrs", topic="long_range_strike", channels=("hook", "mail")),
             AlertRule(name="troops", topic="troop_deployment", channels=("hook",)))
    settings = Settings(state_dir=tmp / "state", topics=ROOT / "config" / "topics.yaml",
                        search=search)
    # The run's clock is the samples' (NOW): they are news then, not on the day the test runs.
    return RunContext(settings=settings, alerts=AlertsConfig(channels=channels, rules=rules),
                      now=NOW)


def alerts_of(search: SearchSettings) -> list[dict[str, object]]:
    index = f"{search.index_prefix}-alerts"
    httpx.post(f"{search.url}/{index}/_refresh", timeout=30)
    res = httpx.post(f"{search.url}/{index}/_search", json={"size": 100}, timeout=30)
    return [h["_source"] for h in res.json()["hits"]["hits"]]


@dataclass(frozen=True)
class Desk:
    """A run's alert context delivering to a live webhook (``hook``) and mailbox (``inbox``)."""

    ctx: RunContext
    hook: Recorder
    inbox: SmtpInbox


@pytest.fixture
def desk(tmp_path: Path, search_settings: SearchSettings) -> Iterator[Desk]:
    hook = Recorder()
    with serve({"/hook": hook}) as srv, smtp_server() as inbox:
        yield Desk(context(tmp_path, search_settings, srv.url("/hook"), inbox), hook, inbox)


def story_events(hook: Recorder, rule: str) -> list[tuple[str, str, int]]:
    """(delivery id, event, sources) of each webhook message about ``rule``'s alert, checked
    to be one story told in order: created once, then updated with more sources each time,
    every message with its own delivery id."""
    told = [(b["delivery_id"], b["event"], len(b["alert"]["sources"])) for b in hook.bodies
            if b["alert"]["rule"] == rule]
    assert [e for _, e, _ in told] == ["alert.created"] + ["alert.updated"] * (len(told) - 1)
    assert [n for _, _, n in told] == sorted(set(n for _, _, n in told))
    assert len({d for d, _, _ in told}) == len(told)
    return told


@pytest.mark.integration
def test_one_alert_and_one_delivery_per_story_across_copies_and_reruns(
    tmp_path: Path, search_settings: SearchSettings, desk: Desk
) -> None:
    hook, inbox = desk.hook, desk.inbox
    ctx = desk.ctx
    source = archive(tmp_path, story_items())
    assert run_backfill(source, ctx, progress=False) == 3
    alerts = {a["rule"]: a for a in alerts_of(search_settings)}
    assert sorted(alerts) == ["lrs", "troops"]
    lrs = alerts["lrs"]
    # two copies of the ATACMS story (two sources): one alert, updated, delivered once
    assert lrs["source_count"] == 2 and lrs["source_ids"] == ["paper-b", "wire-a"]
    assert lrs["notified"] == ["hook", "mail"] and lrs["pending"] == []
    assert sorted({b["alert"]["rule"] for b in hook.bodies}) == ["lrs", "troops"]
    assert story_events(hook, "lrs")[-1][2] == 2  # the webhook knows both sources
    assert len(inbox.messages) == 1
    assert inbox.messages[0]["Subject"].startswith("[newsmon] Long range strike: ")
    sent_before = len(hook.bodies)

    # the same input again (a re-run after a crash, a backfill): no new alert, no delivery
    assert run_backfill(source, ctx, progress=False) == 3
    # later copies of the story update the alert without delivering it again
    first = {x.item_id for x in story_items()}
    later = [i for i in story_items(minutes=30) if i.item_id not in first]
    rewrite = RawItem.make(source=SourceRef(id="wire-c", type="rss", lang="en"), guid="9",
                           url="https://wire-c.example/9", title="ATACMS on Kursk airfield",
                           summary=WIRE, published_at=NOW, first_seen_at=NOW)
    assert run_backfill(archive(tmp_path, [*later, rewrite], "later.jsonl"), ctx,
                        progress=False) == 1
    after = {a["rule"]: a for a in alerts_of(search_settings)}
    assert len(after) == 2
    assert after["lrs"]["source_count"] == 3
    # the story grew (a third source): the webhook is told (alert.updated), the mail is not
    assert len(hook.bodies) == sent_before + 1 and len(inbox.messages) == 1
    assert story_events(hook, "lrs")[-1][1:] == ("alert.updated", 3)
    # every message recorded (the mail's one and the webhook's), nothing else
    assert [d["status"] for d in after["lrs"]["deliveries"]] == ["sent"] * (
        len(story_events(hook, "lrs")) + 1)


@pytest.mark.integration
def test_a_channel_down_during_the_run_is_delivered_by_the_next_run(
    tmp_path: Path, search_settings: SearchSettings, desk: Desk
) -> None:
    hook, inbox = desk.hook, desk.inbox
    hook.statuses = [503, 503]  # two attempts, both refused: the webhook is down
    base = desk.ctx
    ctx = RunContext(settings=base.settings, alerts=base.alerts, now=NOW)
    raw = story_items()
    run_backfill(archive(tmp_path, raw[:2]), ctx, progress=False)
    lrs = next(a for a in alerts_of(search_settings) if a["rule"] == "lrs")
    assert lrs["notified"] == ["mail"] and lrs["pending"] == ["hook"]
    assert lrs["failed"] == ["hook"]
    assert [(d["channel"], d["status"], d["attempts"]) for d in lrs["deliveries"]] == [
        ("hook", "failed", 2), ("mail", "sent", 1)]
    # the end-of-run sweep left it alone (it had just failed); the next run, minutes later,
    # sweeps what is still owed
    later = RunContext(settings=base.settings, alerts=base.alerts, now=NOW + timedelta(minutes=5))
    run_backfill(archive(tmp_path, raw[2:], "next.jsonl"), later, progress=False)
    lrs = next(a for a in alerts_of(search_settings) if a["rule"] == "lrs")
    assert lrs["notified"] == ["hook", "mail"] and lrs["pending"] == [] and lrs["failed"] == []
    assert sorted({b["alert"]["rule"] for b in hook.bodies}) == ["lrs", "troops"]
    assert len(inbox.messages) == 1


@pytest.mark.integration
def test_surge_on_a_synthetic_burst(server_store: DocumentStore) -> None:
    surge_contract(server_store)


@pytest.mark.integration
def test_surge_is_evaluated_and_delivered_at_the_end_of_a_run(
    tmp_path: Path, search_settings: SearchSettings, desk: Desk
) -> None:
    hook, ctx = desk.hook, desk.ctx
    surge = SurgeRule(name="lrs-surge", topic="long_range_strike", interval_s=3600,
                      baseline_intervals=6, min_count=2, channels=("hook",),
                      # a fresh index: about delivery, not about the history a surge needs
                      min_history_intervals=0)
    alerts = ctx.alerts.model_copy(update={"rules": (), "surges": (surge,)})
    ctx = RunContext(settings=ctx.settings, alerts=alerts, now=NOW + timedelta(minutes=20))
    run_backfill(archive(tmp_path, story_items()), ctx, progress=False)
    surges = [a for a in alerts_of(search_settings) if a.get("kind") == "surge"]
    assert len(surges) == 1
    assert surges[0]["count"] == 2 and surges[0]["interval_start"] == "2026-11-20T12:00:00+00:00"
    assert [b["alert"]["kind"] for b in hook.bodies] == ["surge"]
    # another run in the same hour: the same surge alert, not delivered again
    run_backfill(archive(tmp_path, story_items()), ctx, progress=False)
    assert len([a for a in alerts_of(search_settings) if a.get("kind") == "surge"]) == 1
    assert len(hook.bodies) == 1


@pytest.mark.integration
def test_articles_older_than_the_maximum_age_are_stored_but_do_not_alert(
    tmp_path: Path, search_settings: SearchSettings, desk: Desk
) -> None:
    """Issue 18: a newly added feed alerted on its old items as if they were new. Its archive
    (published 14 days before the run, first seen now) and an undated item first seen three
    days ago are stored, and alert nothing; the fresh items of the same run alert."""
    ctx = desk.ctx
    assert ctx.alerts.max_article_age_s == 48 * 3600  # the default
    old = [item.model_copy(update={"published_at": NOW - timedelta(days=14)})
           for item in story_items()]
    undated = RawItem.make(source=SourceRef(id="wire-c", type="rss", lang="en"), guid="u",
                           url="https://wire-c.example/u", title="Troops for Ukraine",
                           summary=TROOPS, published_at=None,
                           first_seen_at=NOW - timedelta(days=3))
    assert run_backfill(archive(tmp_path, [*old, undated]), ctx, progress=False) == 4
    store = open_store(search_settings, tmp_path)
    store.refresh("articles")
    assert store.count("articles") == 4
    assert alerts_of(search_settings) == [] and desk.hook.bodies == []

    fresh = RawItem.make(source=SourceRef(id="wire-d", type="rss", lang="en"), guid="f",
                         url="https://wire-d.example/f", title="Strike on Kursk airfield",
                         summary=WIRE + " A second day of strikes followed.",
                         published_at=NOW - timedelta(hours=47), first_seen_at=NOW)
    assert run_backfill(archive(tmp_path, [fresh], "fresh.jsonl"), ctx, progress=False) == 1
    assert [a["rule"] for a in alerts_of(search_settings)] == ["lrs"]


@pytest.mark.integration
def test_an_exact_copy_is_stored_and_counted_alike_by_alert_and_report(
    tmp_path: Path, search_settings: SearchSettings, desk: Desk
) -> None:
    """Issue 18: an exact copy from another source was not stored, so the alert's doc_ids
    pointed at a missing document and the report counted 2 sources where the alert said 3."""
    from newsmon.ops.report import collect, summarize

    copy = RawItem.make(source=SourceRef(id="wire-c", type="rss", lang="en"), guid="c",
                        url="https://wire-c.example/c", title="ATACMS strike on Kursk airfield",
                        summary=WIRE, published_at=NOW, first_seen_at=NOW + timedelta(minutes=1))
    assert run_backfill(archive(tmp_path, [*story_items(), copy]), desk.ctx,
                        progress=False) == 4
    lrs = next(a for a in alerts_of(search_settings) if a["rule"] == "lrs")
    assert lrs["source_count"] == 3 and "wire-c" in lrs["source_ids"]
    store = open_store(search_settings, tmp_path)
    store.refresh("articles")
    assert all(store.get("articles", doc_id) is not None for doc_id in lrs["doc_ids"])
    report = summarize(collect(store, NOW - timedelta(days=1), NOW + timedelta(days=1)))
    [story] = [s for s in report.stories if s.story_id == lrs["story_id"]]
    assert len(story.sources) == lrs["source_count"] and story.copies == 3
