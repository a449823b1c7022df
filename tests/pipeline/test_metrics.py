"""Metrics: per-stage counts read back from a real Beam run, the textfile that carries counters
across scheduled runs, the HTTP endpoint, per-source poll counts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from newsmon import metrics
from newsmon.config import Settings
from newsmon.connectors import metrics as connectors_metrics
from newsmon.connectors.results import PollReport, SourceResult
from newsmon.models import RawItem, SourceRef
from newsmon.pipeline import metrics as pipeline_metrics
from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig
from newsmon.pipeline.app import RunContext
from newsmon.pipeline.io_kafka import PartitionRange, RawRecord
from newsmon.pipeline.jobs import run_records

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STRIKE = ("Ukrainian forces struck a military airfield in Russia's Kursk region with US-made "
          "ATACMS missiles overnight, officials in Kyiv said, days after the White House "
          "allowed the long-range weapons to be used against targets on Russian territory.")


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def record(guid: str, text: str) -> RawRecord:
    ref = SourceRef(id="wire-a", type="rss", name="Wire A", lang="en", country="GB")
    item = RawItem.make(source=ref, guid=guid, url=f"https://wire-a.example/{guid}",
                        title=f"Story {guid}", summary=text, published_at=NOW,
                        first_seen_at=NOW)
    return RawRecord("wire-a", item.model_dump_json().encode(), f"test:{guid}")


def test_a_pipeline_run_counts_items_per_stage_dead_letters_alerts_and_deliveries(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path, topics=ROOT / "config" / "topics.yaml")
    ctx = RunContext(
        settings=settings,
        alerts=AlertsConfig(channels={"console": ConsoleChannel()},
                            rules=(AlertRule(name="lrs", topic="long_range_strike"),)),
        now=NOW,
    )
    names = [("newsmon_pipeline_items_total", {"stage": s, "outcome": o})
             for s, o in [("decode", "in"), ("decode", "out"), ("decode", "dead_letter"),
                          ("write", "out"), ("classify", "out"), ("alerts", "out"),
                          ("dead_letters", "out")]]
    names += [("newsmon_alert_deliveries_total", {"channel": "console", "status": "ok"}),
              ("newsmon_topic_matches_total", {"topic": "long_range_strike"}),
              ("newsmon_pipeline_records_read_total", {"input": "replay"})]
    before = {(n, tuple(lab.items())): value(n, **lab) for n, lab in names}

    records = [record("1", STRIKE), record("2", "Grain prices fell for a third day."),
               RawRecord("wire-a", b"{not json", "test:bad")]
    run_records(records, ctx)

    delta = {key[0] + str(dict(key[1])): value(key[0], **dict(key[1])) - v
             for key, v in before.items()}

    def d(name: str, **labels: str) -> float:
        return delta[name + str(labels)]

    assert d("newsmon_pipeline_items_total", stage="decode", outcome="in") == 3
    assert d("newsmon_pipeline_items_total", stage="decode", outcome="out") == 2
    assert d("newsmon_pipeline_items_total", stage="decode", outcome="dead_letter") == 1
    assert d("newsmon_pipeline_items_total", stage="classify", outcome="out") == 2
    assert d("newsmon_pipeline_items_total", stage="write", outcome="out") == 2
    assert d("newsmon_pipeline_items_total", stage="alerts", outcome="out") == 1
    assert d("newsmon_pipeline_items_total", stage="dead_letters", outcome="out") == 1
    assert d("newsmon_topic_matches_total", topic="long_range_strike") == 1
    assert d("newsmon_alert_deliveries_total", channel="console", status="ok") == 1
    assert d("newsmon_pipeline_records_read_total", input="replay") == 3


def test_kafka_lag_is_end_minus_committed_per_partition() -> None:
    pipeline_metrics.observe_lag("g-lag", [PartitionRange("t-lag", 0, 5, 12),
                                           PartitionRange("t-lag", 1, 3, 3)])
    assert value("newsmon_kafka_lag", topic="t-lag", partition="0", group="g-lag") == 7
    assert value("newsmon_kafka_lag", topic="t-lag", partition="1", group="g-lag") == 0


def test_poll_reports_count_per_source() -> None:
    before = value("newsmon_source_items_published_total", source="feed-m", kind="new")
    failed = value("newsmon_source_polls_total", source="feed-n", status="error")
    report = PollReport(
        started_at=NOW, finished_at=NOW,
        results=(SourceResult(source_id="feed-m", type="rss", status="ok", new_items=4),
                 SourceResult(source_id="feed-n", type="rss", status="error", error="HTTP 500")),
    )
    connectors_metrics.observe_poll_report(report, "once")
    assert value("newsmon_source_items_published_total", source="feed-m", kind="new") == (
        before + 4)
    assert value("newsmon_source_polls_total", source="feed-n", status="error") == failed + 1


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_textfile_carries_counters_across_runs_and_records_each_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "textfile" / "newsmon_test.prom"
    key = ("newsmon_source_polls_total", (("source", "carry-on"), ("status", "ok")))
    path.parent.mkdir()
    # A previous run's file: this process has never counted "carry-on".
    path.write_text('# HELP newsmon_source_polls_total x\n# TYPE newsmon_source_polls_total '
                    'counter\nnewsmon_source_polls_total{source="carry-on",status="ok"} 5.0\n')
    with metrics.exported("test-cmd", textfile=path):
        metrics.SOURCE_POLLS.labels("carry-on", "ok").inc(2)
    first = _samples(path)
    assert first[key] == 7
    assert first[("newsmon_last_run_success", (("command", "test-cmd"),))] == 1
    assert ("newsmon_last_run_duration_seconds", (("command", "test-cmd"),)) in first
    # No histograms in a textfile: their buckets cannot carry on.
    assert not any(name.endswith("_bucket") for name, _ in first)
    success_at = first[("newsmon_last_success_timestamp_seconds", (("command", "test-cmd"),))]

    class Failed(Exception):
        exit_code = 1

    with pytest.raises(Failed), metrics.exported("test-cmd", textfile=path):
        raise Failed
    second = _samples(path)
    assert second[("newsmon_last_run_success", (("command", "test-cmd"),))] == 0
    # The failed run keeps when the command last succeeded.
    assert second[("newsmon_last_success_timestamp_seconds", (("command", "test-cmd"),))] == (
        success_at)
    assert not list(path.parent.glob("*.tmp*")), "written atomically, no temp files left"


@pytest.mark.parametrize("name", ["newsmon_connector_dead_letters", "newsmon_alerts"])
def test_every_counter_carries_on_including_the_pollers_dead_letters(
    tmp_path: Path, name: str,
) -> None:
    # The pollers' dead-letter counter was once left out of the hand-kept list of counters
    # to carry on, so it restarted from zero in every scheduled run's file.
    path = tmp_path / "newsmon_test.prom"
    label = "type" if name == "newsmon_connector_dead_letters" else "event"
    path.write_text(f'# HELP {name}_total x\n# TYPE {name}_total counter\n'
                    f'{name}_total{{{label}="carried"}} 3.0\n')
    with metrics.exported("test-carry", textfile=path):
        pass
    assert _samples(path)[(f"{name}_total", ((label, "carried"),))] == 3


def test_the_endpoint_serves_newsmon_and_process_metrics_on_loopback() -> None:
    server = metrics.serve(0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        metrics.SOURCE_POLLS.labels("endpoint-test", "ok").inc()
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.shutdown()
        server.server_close()
    assert 'newsmon_source_polls_total{source="endpoint-test",status="ok"}' in body
    assert "process_resident_memory_bytes" in body
