"""Kafka with security on, for real: a broker whose only client listener is SASL_SSL (PLAIN
and SCRAM-SHA-512 over TLS with a CA of its own), started by services.sh with
NEWSMON_KAFKA_SECURITY=1. Every test goes through newsmon's own clients, configured from the
environment as an operator would; the failures must say what is wrong, in bounded time, and
never print the password.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from newsmon.config import KafkaSettings, load_settings
from newsmon.connectors.publisher import KafkaPublisher, PublishError
from newsmon.kafka import KafkaUnavailable
from newsmon.models import RawItem, SourceRef
from newsmon.pipeline.io_kafka import ReadPartitionRangeFn, commit_ranges, snapshot_ranges
from tests.e2e.test_thin_run import FEED
from tests.localhttp import Response, serve
from tests.security.conftest import SecureKafka

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


def settings_from(tmp_path: Path, env: dict[str, str]) -> KafkaSettings:
    config = tmp_path / "newsmon.yaml"
    config.write_text("search:\n  backend: embedded\n")
    return load_settings(config, environ=env).kafka


def items(n: int) -> list[RawItem]:
    now = datetime.now(UTC)
    return [RawItem.make(source=SourceRef(id="sasl-test", type="rss"), guid=f"g{i}",
                         title=f"item {i}", first_seen_at=now) for i in range(n)]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_publish_snapshot_read_and_commit_over_sasl_ssl(
        secure_kafka: SecureKafka, tmp_path: Path, mechanism: str) -> None:
    settings = settings_from(tmp_path, secure_kafka.env(NEWSMON_KAFKA__SASL_MECHANISM=mechanism))
    topic, group = f"sasl-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    sent = items(5)
    publisher = KafkaPublisher(settings, topic=topic)
    try:
        publisher.publish(sent)
    finally:
        publisher.close()
    ranges = snapshot_ranges(settings, topic, group)
    assert sum(r.size for r in ranges) == 5
    reader = ReadPartitionRangeFn(settings)
    read = [RawItem.from_json(record.payload) for r in ranges for record in reader.process(r)]
    assert sorted(i.item_id for i in read) == sorted(i.item_id for i in sent)
    commit_ranges(settings, group, ranges)
    assert sum(r.size for r in snapshot_ranges(settings, topic, group)) == 0


def test_poll_and_pipeline_run_over_sasl_ssl(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    """The operator's commands, in their own processes: a feed polled into the SASL_SSL
    broker (SCRAM), the batch pipeline reading it into the embedded store."""
    feed = Response(FEED, headers={"Content-Type": "application/rss+xml"})
    with serve({"/feed.xml": feed}) as srv:
        (tmp_path / "feeds.yaml").write_text(yaml.safe_dump({"sources": [{
            "id": "sasl-feed", "type": "rss", "url": srv.url("/feed.xml"), "name": "SASL",
            "lang": "en", "country": "GB"}]}))
        config = tmp_path / "newsmon.yaml"
        config.write_text(yaml.safe_dump({
            "state_dir": str(tmp_path / "state"), "feeds": "feeds.yaml",
            "topics": str(ROOT / "config" / "topics.yaml"),
            "alerts": str(ROOT / "config" / "alerts.yaml"),
            "kafka": {"raw_topic": f"sasl-raw-{uuid.uuid4().hex[:8]}",
                      "dead_letter_topic": f"sasl-dl-{uuid.uuid4().hex[:8]}"},
            "search": {"backend": "embedded"}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
        env |= secure_kafka.env(NEWSMON_KAFKA__SASL_MECHANISM="SCRAM-SHA-512")

        def newsmon(*args: str) -> subprocess.CompletedProcess[str]:
            proc = subprocess.run([sys.executable, "-m", "newsmon.cli", *args,
                                   "--config", str(config)], capture_output=True, text=True,
                                  env=env, timeout=150, check=False, cwd=tmp_path)
            assert proc.returncode == 0, f"newsmon {args}:\n{proc.stdout}\n{proc.stderr}"
            assert secure_kafka.password not in proc.stdout + proc.stderr
            return proc

        assert "4 new" in newsmon("poll", "--once").stdout
        assert "processed 4 records" in newsmon("pipeline", "run").stdout
        assert "processed 0 records" in newsmon("pipeline", "run").stdout


def test_a_wrong_password_is_a_clear_error(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    wrong = "not-the-Pa55word"
    settings = settings_from(tmp_path, secure_kafka.env(
        NEWSMON_KAFKA__SASL_PASSWORD=wrong, NEWSMON_KAFKA__REQUEST_TIMEOUT_MS="3000"))
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable) as info:
        snapshot_ranges(settings, "any", "group")
    message = str(info.value)
    assert "SASL authentication failed for user 'newsmon'" in message
    assert "Invalid username or password" in message  # the broker's own words
    assert wrong not in message and secure_kafka.password not in message
    assert time.monotonic() - started < 15

    publisher = KafkaPublisher(settings, topic="any")
    try:
        with pytest.raises(PublishError) as published:
            publisher.publish(items(1))
    finally:
        publisher.close()
    assert "SASL authentication failed" in str(published.value)
    assert wrong not in str(published.value)
    assert time.monotonic() - started < 40


def test_the_pipeline_command_says_so_too(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    wrong = "not-the-Pa55word"
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                      "topics": str(ROOT / "config" / "topics.yaml"),
                                      "alerts": str(ROOT / "config" / "alerts.yaml"),
                                      "search": {"backend": "embedded"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env |= secure_kafka.env(NEWSMON_KAFKA__SASL_PASSWORD=wrong)
    proc = subprocess.run([sys.executable, "-m", "newsmon.cli", "pipeline", "run",
                           "--config", str(config)], capture_output=True, text=True, env=env,
                          timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode != 0
    assert "SASL authentication failed for user 'newsmon'" in proc.stderr, proc.stderr
    assert wrong not in proc.stdout + proc.stderr


def test_an_untrusted_certificate_is_a_clear_error(secure_kafka: SecureKafka,
                                                   tmp_path: Path) -> None:
    env = secure_kafka.env()
    del env["NEWSMON_KAFKA__SSL_CAFILE"]  # the system's trust store does not know our CA
    settings = settings_from(tmp_path, env)
    with pytest.raises(KafkaUnavailable, match=r"CERTIFICATE_VERIFY_FAILED.*kafka\.ssl_cafile"):
        snapshot_ranges(settings, "any", "group")
    publisher = KafkaPublisher(settings, topic="any")
    try:
        with pytest.raises(PublishError, match="CERTIFICATE_VERIFY_FAILED"):
            publisher.publish(items(1))
    finally:
        publisher.close()


def test_plaintext_to_the_tls_listener_is_a_clear_error(secure_kafka: SecureKafka,
                                                        tmp_path: Path) -> None:
    settings = settings_from(tmp_path, {"NEWSMON_KAFKA__BOOTSTRAP_SERVERS": secure_kafka.bootstrap,
                                        "NEWSMON_KAFKA__REQUEST_TIMEOUT_MS": "3000"})
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match="does the listener expect TLS"):
        snapshot_ranges(settings, "any", "group")
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("good", [True, False], ids=["right-password", "wrong-password"])
def test_doctor_checks_the_credentials(secure_kafka: SecureKafka, tmp_path: Path,
                                       good: bool) -> None:
    wrong = "not-the-Pa55word"
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                      "topics": str(ROOT / "config" / "topics.yaml"),
                                      "alerts": str(ROOT / "config" / "alerts.yaml"),
                                      "feeds": str(ROOT / "config" / "feeds.yaml"),
                                      "search": {"backend": "embedded"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env |= secure_kafka.env() if good else secure_kafka.env(NEWSMON_KAFKA__SASL_PASSWORD=wrong)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "newsmon.cli", "doctor",
                           "--config", str(config)], capture_output=True, text=True, env=env,
                          timeout=120, check=False, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    kafka_lines = [line for line in output.splitlines() if "kafka" in line.lower()]
    assert time.monotonic() - started < 60
    assert wrong not in output and secure_kafka.password not in output
    if good:
        assert any(f"broker at {secure_kafka.bootstrap} answers" in x for x in kafka_lines), output
    else:
        assert any("SASL authentication failed for user 'newsmon'" in x for x in kafka_lines), \
            output
