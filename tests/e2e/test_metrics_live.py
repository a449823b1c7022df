"""Metrics of real runs: the endpoint of `newsmon pipeline run --mode stream` scraped while it
processes items from a real Kafka into a real search server (the counters move as items
arrive), the endpoint of a continuous `newsmon poll` (per-source counts, JSON logs with the
source id), and the textfile of `newsmon poll --once` against a local feed and real Kafka."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from newsmon.config import KafkaSettings, SearchSettings
from newsmon.models import RawItem, SourceRef
from tests.e2e.configs import write_config
from tests.localhttp import Response, serve

# Recent: the pipeline runs on the wall clock, and older items do not alert (max_article_age_s).
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
STRIKE = ("Ukrainian forces struck a military airfield in Russia's Kursk region with US-made "
          "ATACMS missiles overnight, days after the White House allowed the long-range "
          "weapons to be used against targets on Russian territory.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def newsmon(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "newsmon.cli", *args, "--config", str(config)]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}


def produce(kafka: KafkaSettings, payloads: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    for payload in payloads:
        producer.send(kafka.raw_topic, key=b"wire-live", value=payload)
    producer.flush()
    producer.close()


def item(guid: str, text: str) -> bytes:
    ref = SourceRef(id="wire-live", type="rss", name="Wire", lang="en", country="GB")
    return RawItem.make(source=ref, guid=guid, url=f"https://wire-live.example/{guid}",
                        title=f"Item {guid}", summary=text, published_at=NOW,
                        first_seen_at=NOW).model_dump_json().encode()


def wait_for(scrape: Callable[[], dict[tuple[str, frozenset[tuple[str, str]]], float]],
             ok: Callable[[dict[tuple[str, frozenset[tuple[str, str]]], float]], bool],
             proc: subprocess.Popen[str], what: str, timeout_s: float = 180
             ) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    deadline = time.monotonic() + timeout_s
    last: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"newsmon exited early: {proc.communicate()[1][-3000:]}"
        try:
            last = scrape()
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        if ok(last):
            return last
        time.sleep(0.5)
    pytest.fail(f"metrics never showed {what}; last scrape: "
                f"{ {k[0]: v for k, v in last.items() if k[0].startswith('newsmon_p')} }")


@pytest.mark.integration
def test_stream_metrics_endpoint_counters_move_during_a_real_run(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings
) -> None:
    config = write_config(tmp_path, kafka_settings, search_settings)
    port = free_port()
    produce(kafka_settings, [item("1", STRIKE), item("2", "Grain prices fell again."),
                             item("3", "The council approved a new tram line.")])
    proc = subprocess.Popen(
        newsmon(config, "pipeline", "run", "--mode", "stream", "--metrics-port", str(port)),
        env=env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)

    try:
        # The stream exports its counters every 5 s, and delivers after the writes: an export
        # may show the 3 documents before the alert went out, so wait for both.
        first = wait_for(scrape, lambda m: metric(m, "newsmon_pipeline_items_total",
                                                  stage="write", outcome="out") >= 3
                         and metric(m, "newsmon_alert_deliveries_total", channel="console",
                                    status="ok") >= 1,
                         proc, "3 documents written and the alert delivered")
        assert metric(first, "newsmon_pipeline_items_total", stage="decode", outcome="in") == 3
        assert metric(first, "newsmon_pipeline_records_read_total", input="kafka-stream") == 3
        assert metric(first, "newsmon_topic_matches_total", topic="long_range_strike") == 1
        assert metric(first, "newsmon_alerts_total", event="created") == 1
        assert metric(first, "newsmon_alert_deliveries_total", channel="console",
                      status="ok") == 1
        assert metric(first, "newsmon_pipeline_runs_total", input="kafka-stream") == 1
        assert metric(first, "process_resident_memory_bytes") > 0

        # More items arrive, one of them broken: the same endpoint shows the counters move.
        produce(kafka_settings, [item("4", "Another unrelated story about the weather."),
                                 b"{this is not json"])
        second = wait_for(scrape, lambda m: metric(m, "newsmon_pipeline_items_total",
                                                   stage="decode", outcome="dead_letter") >= 1
                          and metric(m, "newsmon_pipeline_items_total", stage="write",
                                     outcome="out") >= 4,
                          proc, "the second batch")
        assert metric(second, "newsmon_pipeline_records_read_total", input="kafka-stream") == 5
        assert metric(second, "newsmon_pipeline_items_total", stage="dead_letters",
                      outcome="out") == 1
        lag = {dict(k[1])["partition"]: v for k, v in second.items()
               if k[0] == "newsmon_kafka_lag" and dict(k[1])["topic"] == kafka_settings.raw_topic}
        assert lag and all(v >= 0 for v in lag.values())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "stream stopped after 5 records" in out


FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Live</title><link>https://live.example/</link>
<description>metrics</description>
<item><title>One</title><link>https://live.example/1</link><guid>l-1</guid>
<description>First item of the live metrics feed, long enough to be an article.</description>
</item>
<item><title>Two</title><link>https://live.example/2</link><guid>l-2</guid>
<description>Second item of the live metrics feed, long enough to be an article.</description>
</item></channel></rss>"""


@pytest.mark.integration
def test_poll_once_writes_a_textfile_whose_counters_carry_on(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    search = SearchSettings(backend="embedded")
    textfile = tmp_path / "textfile" / "newsmon-poll.prom"
    with serve({"/feed.xml": Response(FEED, headers={"Content-Type": "application/rss+xml"}),
                "/gone.xml": Response(b"gone", 404)}) as srv:
        feeds = {"sources": [
            {"id": "live-feed", "type": "rss", "url": srv.url("/feed.xml"), "name": "Live",
             "lang": "en", "country": "GB"},
            {"id": "gone-feed", "type": "rss", "url": srv.url("/gone.xml"), "name": "Gone",
             "lang": "en", "country": "GB"},
        ]}
        config = write_config(tmp_path, kafka_settings, search, feeds)
        args = newsmon(config, "poll", "--once", "--force", "--metrics-file", str(textfile))
        first = subprocess.run(args, env=env(), cwd=tmp_path, capture_output=True, text=True,
                               timeout=300, check=False)
        second = subprocess.run(args, env=env(), cwd=tmp_path, capture_output=True, text=True,
                                timeout=300, check=False)
    assert first.returncode == 3 and "gone-feed" in first.stdout  # a source failed
    assert second.returncode == 3
    found = samples(textfile.read_text())
    assert metric(found, "newsmon_source_items_published_total", source="live-feed",
                  kind="new") == 2
    # Two runs, each polling both sources: the counters carried on from the first file.
    assert metric(found, "newsmon_source_polls_total", source="live-feed", status="ok") + (
        metric(found, "newsmon_source_polls_total", source="live-feed",
               status="not-modified")) == 2
    assert metric(found, "newsmon_source_polls_total", source="gone-feed", status="error") == 2
    assert metric(found, "newsmon_last_run_success", command="poll-once") == 0
    assert metric(found, "newsmon_last_run_duration_seconds", command="poll-once") > 0
    assert metric(found, "newsmon_last_run_timestamp_seconds", command="poll-once") > (
        time.time() - 600)
    assert not any(name.endswith("_bucket") for name, _ in found)


@pytest.mark.integration
def test_continuous_poll_serves_per_source_counts_while_it_runs(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    port = free_port()
    with serve({"/feed.xml": Response(FEED, headers={"Content-Type": "application/rss+xml"})}
               ) as srv:
        feeds = {"sources": [{"id": "live-feed", "type": "rss", "url": srv.url("/feed.xml"),
                              "name": "Live", "lang": "en", "country": "GB"}]}
        config = write_config(tmp_path, kafka_settings, SearchSettings(backend="embedded"),
                              feeds)
        proc = subprocess.Popen(
            newsmon(config, "--log-format", "json", "poll", "--metrics-port", str(port)),
            env=env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            found = wait_for(
                lambda: samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text),
                lambda m: metric(m, "newsmon_source_items_published_total", source="live-feed",
                                 kind="new") == 2,
                proc, "2 items published by live-feed")
            assert metric(found, "newsmon_source_polls_total", source="live-feed",
                          status="ok") == 1
            assert metric(found, "newsmon_connector_poll_seconds_count", type="rss") == 1
            assert metric(found, "newsmon_poll_pass_seconds_count", mode="forever") == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    published = [e for e in events if e["message"].startswith("source live-feed: 2 new")]
    assert published and published[0]["source_id"] == "live-feed"
