"""Time-to-alert (issue 16, point 5): an alert carries the times of its first copy
(published, first seen, indexed) and of its first delivery (notified), in that order, on both
real search servers; each lag reaches Prometheus through the Beam counters the driver reads
back, labelled by source kind and path (poll or push); the report's p50/p95 per source kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from newsmon import metrics
from newsmon.config import SearchSettings, Settings
from newsmon.models import RawItem, SourceKind, SourceRef
from newsmon.ops.report import (
    ALL_KINDS,
    ReportData,
    quantile,
    render,
    summarize,
    time_to_alert,
)
from newsmon.pipeline.alerts.channels.webhook import WebhookChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig
from newsmon.pipeline.alerts.state import Attempt, alert_lags, apply_attempts, delivery_latency
from newsmon.pipeline.app import RunContext
from newsmon.pipeline.jobs import run_backfill
from newsmon.pipeline.store.base import parse_time
from tests.alertservers import Recorder
from tests.localhttp import serve
from tests.pipeline.samples import TROOPS, WIRE

ROOT = Path(__file__).resolve().parents[3]
TIMES = ("published_at", "first_seen_at", "indexed_at", "notified_at")


def lag_count(lag: str, kind: str, fed_by: str) -> float:
    return metrics.REGISTRY.get_sample_value(
        "newsmon_alert_lag_seconds_count",
        {"lag": lag, "source_kind": kind, "fed_by": fed_by}) or 0.0


@pytest.mark.integration
def test_an_alert_records_its_four_times_in_order_and_the_lags_reach_prometheus(
    tmp_path: Path, search_settings: SearchSettings
) -> None:
    # The wall clock (no fixed run clock): the times are the real ones of this run.
    now = datetime.now(UTC)
    pushed = SourceRef(id="wire-tta", type="rss", name="Wire", lang="en", country="GB",
                       kind=SourceKind.WIRE, owner="Wire Ltd")
    polled = SourceRef(id="blog-tta", type="rss", name="Blog", lang="en")
    items = [
        RawItem.make(source=pushed, guid="1", url="https://wire-tta.example/1",
                     title="ATACMS strike on Kursk airfield", summary=WIRE,
                     published_at=now - timedelta(seconds=40),
                     first_seen_at=now - timedelta(seconds=3)
                     ).model_copy(update={"fed_by": "push"}),
        RawItem.make(source=polled, guid="2", url="https://blog-tta.example/2",
                     title="Troops for Ukraine discussed", summary=TROOPS,
                     published_at=now - timedelta(seconds=600),
                     first_seen_at=now - timedelta(seconds=5)),
    ]
    archive = tmp_path / "archive.jsonl"
    archive.write_bytes(b"\n".join(i.to_json() for i in items) + b"\n")
    hook = Recorder()
    before = {key: lag_count(*key) for key in (
        ("publish_to_notified", "wire", "push"), ("first_seen_to_indexed", "wire", "push"),
        ("publish_to_notified", metrics.UNLABELLED, "poll"))}
    with serve({"/hook": hook}) as srv:
        channels = {"hook": WebhookChannel(url=srv.url("/hook"), timeout_s=2, attempts=2)}
        rules = (AlertRule(name="lrs", topic="long_range_strike", channels=("hook",)),
                 AlertRule(name="troops", topic="troop_deployment", channels=("hook",)))
        settings = Settings(state_dir=tmp_path / "state", search=search_settings,
                            topics=ROOT / "config" / "topics.yaml")
        ctx = RunContext(settings=settings, alerts=AlertsConfig(channels=channels, rules=rules))
        assert run_backfill(archive, ctx, progress=False) == 2
    received_by = datetime.now(UTC)

    index = f"{search_settings.index_prefix}-alerts"
    httpx.post(f"{search_settings.url}/{index}/_refresh", timeout=30)
    hits = httpx.post(f"{search_settings.url}/{index}/_search", json={"size": 10},
                      timeout=30).json()["hits"]["hits"]
    alerts = {h["_source"]["rule"]: h["_source"] for h in hits}
    assert sorted(alerts) == ["lrs", "troops"]
    lrs = alerts["lrs"]
    times = [parse_time(lrs[k]) for k in TIMES]
    assert times == sorted(times) and times[0] < times[1] < times[3] <= received_by
    assert times[0] == items[0].published_at and times[1] == items[0].first_seen_at
    assert lrs["fed_by"] == "push" and alerts["troops"]["fed_by"] == "poll"
    (delivery,) = lrs["deliveries"]
    assert delivery["notified_at"] == lrs["notified_at"]
    # The article's own indexed_at is the write's clock, a moment before the alert stage's.
    articles = httpx.post(f"{search_settings.url}/{search_settings.index_prefix}-articles"
                          "/_search", json={"query": {"term": {"doc_id": lrs["doc_ids"][0]}}},
                          timeout=30).json()["hits"]["hits"]
    assert parse_time(articles[0]["_source"]["indexed_at"]) <= times[2]
    assert articles[0]["_source"]["fed_by"] == "push"

    # Each lag counted once per alert, under its first copy's kind and path.
    assert lag_count("publish_to_notified", "wire", "push") == before[
        ("publish_to_notified", "wire", "push")] + 1
    assert lag_count("first_seen_to_indexed", "wire", "push") == before[
        ("first_seen_to_indexed", "wire", "push")] + 1
    assert lag_count("publish_to_notified", metrics.UNLABELLED, "poll") == before[
        ("publish_to_notified", metrics.UNLABELLED, "poll")] + 1
    # 40 s from publication to notification: not in the 30 s bucket, in the 60 s one.
    bucket = {"lag": "publish_to_notified", "source_kind": "wire", "fed_by": "push"}
    sample = metrics.REGISTRY.get_sample_value
    assert (sample("newsmon_alert_lag_seconds_bucket", {**bucket, "le": "60.0"}) or 0) - (
        sample("newsmon_alert_lag_seconds_bucket", {**bucket, "le": "30.0"}) or 0) >= 1


def test_the_histogram_exposition_is_cumulative_with_sum_and_count() -> None:
    key = ("indexed_to_notified", "think_tank", "poll")
    for seconds in (0.2, 1.5, 1.5, 4000.0):
        for bucket, n in metrics.lag_observation(seconds):
            assert metrics.apply_beam_counter(
                metrics.lag_counter(key[0], "poll", key[1], bucket), n)
    labels = dict(zip(("lag", "source_kind", "fed_by"), key, strict=True))

    def value(suffix: str, **extra: str) -> float | None:
        return metrics.REGISTRY.get_sample_value(f"newsmon_alert_lag_seconds{suffix}",
                                                 {**labels, **extra})

    assert value("_bucket", le="0.5") == 1
    assert value("_bucket", le="1.0") == 1
    assert value("_bucket", le="2.0") == 3
    assert value("_bucket", le="3600.0") == 3
    assert value("_bucket", le="7200.0") == 4
    assert value("_bucket", le="+Inf") == 4
    assert value("_count") == 4
    assert value("_sum") == pytest.approx(4003.2)
    # A lag past the last bound, and a negative one (a source's clock ahead of ours).
    assert metrics.lag_bucket(10 ** 6) == "+Inf" and metrics.lag_bucket(-3) == "0.5"
    assert not metrics.apply_beam_counter("lag.publish_to_notified.poll.wire.7", 1)


def test_lags_of_a_stored_alert_and_the_first_notification_kept() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    doc = {"published_at": base.isoformat(), "first_seen_at": (base + timedelta(seconds=90))
           .isoformat(), "indexed_at": (base + timedelta(seconds=92)).isoformat()}
    assert alert_lags(doc) == {"publish_to_first_seen": 90.0, "first_seen_to_indexed": 2.0}
    first = Attempt("hook", "sent", base, 1, notified_at=base + timedelta(seconds=93))
    done = apply_attempts(doc, [first, Attempt("mail", "failed", base, 1)])
    assert done["notified_at"] == (base + timedelta(seconds=93)).isoformat()
    assert alert_lags(done)["indexed_to_notified"] == 1.0
    assert alert_lags(done)["publish_to_notified"] == 93.0
    # An update delivered later does not move the first notification.
    later = Attempt("mail", "sent", base, 1, notified_at=base + timedelta(seconds=500))
    assert apply_attempts(done, [later])["notified_at"] == done["notified_at"]


def test_quantiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert quantile(values, 0.5) == 10.0
    assert quantile(values, 0.95) == 19.0
    assert quantile([7.0], 0.95) == 7.0
    assert quantile([3.0, 1.0, 2.0], 1.0) == 3.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_report_time_to_alert_per_source_kind() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)

    def alert(kind: str | None, seconds: float, notified: bool = True) -> dict[str, object]:
        doc: dict[str, object] = {"kind": "story", "published_at": base.isoformat(),
                                  "sources": [{"id": "s", "kind": kind}]}
        if notified:
            doc["notified_at"] = (base + timedelta(seconds=seconds)).isoformat()
        return doc

    alerts = [alert("wire", s) for s in (2, 3, 4, 60)] + [alert(None, 900), alert(
        "blog", 5, notified=False), {"kind": "surge", "created_at": base.isoformat()}]
    rows = {r.kind: r for r in time_to_alert(alerts)}
    assert list(rows) == [ALL_KINDS, "unlabelled", "wire"]
    assert (rows["wire"].alerts, rows["wire"].p50_s, rows["wire"].p95_s) == (4, 3.0, 60.0)
    assert (rows[ALL_KINDS].alerts, rows[ALL_KINDS].p95_s) == (5, 900.0)
    assert rows["unlabelled"].p50_s == 900.0


def test_the_report_page_shows_the_section() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    alerts = tuple({"alert_id": f"a{s}", "kind": "story", "rule": "r", "created_at":
                    base.isoformat(), "published_at": base.isoformat(),
                    "notified_at": (base + timedelta(seconds=s)).isoformat(),
                    "sources": [{"id": "w", "kind": "wire"}]} for s in (2, 300))
    data = ReportData(since=base - timedelta(hours=1), until=base + timedelta(hours=1),
                      backend="embedded", articles=(), alerts=alerts, dead_letters=(),
                      sources=())
    page = render(summarize(data))
    section = page.split("Time to alert")[1].split("<h2>")[0]
    assert "<td>wire</td><td>2</td><td>2.0 s</td><td>5.0 min</td>" in section
    empty = render(summarize(ReportData(since=base, until=base + timedelta(hours=1),
                                        backend="embedded", articles=(), alerts=(),
                                        dead_letters=(), sources=())))
    assert "no alert in this window was notified" in empty


def test_a_deliverys_latency_is_labelled_by_the_first_copy() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    doc = {"published_at": base.isoformat(), "first_seen_at": base.isoformat(),
           "indexed_at": (base + timedelta(seconds=1)).isoformat(), "fed_by": "push",
           "sources": [{"id": "w", "kind": "wire"}, {"id": "b", "kind": "blog"}]}
    latency = delivery_latency(doc, base + timedelta(seconds=3))
    assert (latency.source_kind, latency.fed_by) == ("wire", "push")
    assert dict(latency.lags) == {"publish_to_first_seen": 0.0, "first_seen_to_indexed": 1.0,
                                  "indexed_to_notified": 2.0, "publish_to_notified": 3.0}
    older = delivery_latency({"sources": [{"id": "x"}]}, base)  # stored before the times
    assert (older.source_kind, older.fed_by, older.lags) == (metrics.UNLABELLED, "poll", ())
