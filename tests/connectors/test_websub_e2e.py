"""`newsmon push` as a real process: it subscribes a feed at the hub in tests/websubhub.py,
a push reaches the real Kafka broker, `newsmon sources` says the source is pushed and when its
lease ends, and a source taken out of feeds.yaml is unsubscribed at the next start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import KafkaSettings
from newsmon.models import RawItem
from tests.connectors.feeds import ROOT, Entry
from tests.connectors.server import LocalServer, Reply
from tests.connectors.test_kafka import consume, topic  # noqa: F401 - the topic fixture
from tests.connectors.test_websub import ONE, TWO, hub_feed
from tests.websubhub import serve_hub

pytestmark = pytest.mark.integration


def write_config(tmp_path: Path, kafka: KafkaSettings, port: int,
                 sources: list[dict[str, str]]) -> Path:
    push = {"callback_url": f"http://127.0.0.1:{port}/websub", "listen": f"127.0.0.1:{port}"}
    (tmp_path / "feeds.yaml").write_text(yaml.safe_dump({"defaults": {"push": push},
                                                         "sources": sources}))
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "feeds": "feeds.yaml",
        "topics": str(ROOT / "config" / "topics.yaml"),
        "alerts": str(ROOT / "config" / "alerts.yaml"),
        "kafka": {"bootstrap_servers": kafka.bootstrap_servers,
                  "raw_topic": kafka.raw_topic}}))
    return config


@contextmanager
def newsmon_push(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``newsmon push`` in its own process until the block ends (then SIGTERM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    proc = subprocess.Popen([sys.executable, "-m", "newsmon.cli", "push", "-c", str(config),
                             "--allow-private"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode(errors="replace")
        assert proc.returncode == 0, output


def wait(check: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_push_reaches_kafka_and_a_removed_source_is_unsubscribed(
        server: LocalServer, free_port: int, tmp_path: Path, kafka_settings: KafkaSettings,
        topic: str) -> None:  # noqa: F811 - the fixture imported above
    with serve_hub() as hub:
        url = server.url("/feed-a")
        serve = lambda entries: server.route(  # noqa: E731
            "/feed-a", Reply(hub_feed(entries, hub.url, url)))
        serve(ONE)
        source = {"id": "feed-a", "type": "rss", "url": url, "name": "A", "lang": "en",
                  "country": "GB"}
        config = write_config(tmp_path, kafka_settings, free_port, [source])
        with newsmon_push(config):
            wait(lambda: hub.active(url), "the subscription to be verified")
            fresh = [Entry(guid="pushed-1", title="Pushed within seconds")]
            started = time.monotonic()
            wait(lambda: hub.publish(url, hub_feed([*fresh, *TWO], hub.url, url)) == [202],
                 "the push to be accepted")
            records = consume(kafka_settings.bootstrap_servers, topic, at_least=3)
            latency = time.monotonic() - started
        items = [RawItem.model_validate_json(r.value) for r in records]  # type: ignore[attr-defined]
        assert sorted(i.guid for i in items) == ["a", "b", "pushed-1"]
        # Marked as pushed, so its alert's time-to-alert is counted on the push path.
        assert next(i for i in items if i.guid == "pushed-1").fed_by == "push"
        assert {r.key for r in records} == {b"feed-a"}  # type: ignore[attr-defined]
        assert latency < 30

        shown = CliRunner().invoke(app, ["sources", "--json", "--config", str(config)])
        assert shown.exit_code == 0, shown.output
        (row,) = json.loads(shown.stdout)
        assert (row["fed_by"], row["subscription"]) == ("push", "active")
        assert row["lease_expires_at"].endswith("Z")
        table = CliRunner().invoke(app, ["sources", "--config", str(config)])
        assert "push (lease 10d)" in table.stdout or "push (lease 9d)" in table.stdout

        # The source leaves feeds.yaml: the next start unsubscribes it.
        write_config(tmp_path, kafka_settings, free_port, [])
        with newsmon_push(config):
            hub.wait_for("unsubscribe")
            wait(lambda: not hub.active(url), "the unsubscription")
        assert hub.requests[-1]["hub.mode"] == "unsubscribe"


def test_push_without_a_callback_url_says_so(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text("sources: []\n")
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                      "feeds": "feeds.yaml"}))
    result = CliRunner().invoke(app, ["push", "--config", str(config)])
    assert result.exit_code == 2
    assert "callback_url is not set" in result.output

