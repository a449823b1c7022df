"""What the fault tests share: a corpus of distinct items, a config for the fault services,
the real ``newsmon`` command as a process, and the exactly-once check on the search server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from newsmon.config import KafkaSettings
from newsmon.connectors.publisher import KafkaPublisher
from newsmon.models import RawItem, SourceRef

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = Path(sys.executable).parent / "newsmon"

_WORDS = ("harbour", "ministry", "council", "river", "budget", "railway", "festival", "court",
          "election", "vaccine", "satellite", "drought", "museum", "pension", "bridge", "tariff")
#: Matches long_range_strike in config/topics.yaml: some items raise alerts.
STRIKE = ("Ukrainian forces struck an airfield in Russia's {place} region with ATACMS missiles "
          "overnight, days after Washington allowed strikes on Russian territory.")


def make_items(n: int, tag: str, *, strikes_every: int = 0) -> list[RawItem]:
    """``n`` distinct items (no two texts alike, so none is a copy of another) over 8
    sources; every ``strikes_every``-th one is about a missile strike."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    items = []
    for i in range(n):
        source = SourceRef(id=f"{tag}-src-{i % 8}", type="rss", name=f"Source {i % 8}",
                           lang="en", country="GB")
        words = " ".join(_WORDS[(i >> shift) % len(_WORDS)] for shift in range(0, 16, 4))
        if strikes_every and i % strikes_every == 0:
            title, text = f"Strike {i}", STRIKE.format(place=f"Kursk-{i}")
        else:
            title = f"Item {i} {tag}"
            text = f"Report number {i} ({tag}) on the {words}; officials gave figure {i * 7}."
        items.append(RawItem.make(source=source, guid=f"{tag}-{i}",
                                  url=f"https://{source.id}.example/{tag}/{i}", title=title,
                                  summary=text, published_at=now, first_seen_at=now))
    return items


@dataclass
class Setup:
    """A config directory and the environment that points it at the fault services."""

    config: Path
    env: dict[str, str]
    kafka: KafkaSettings
    es_url: str
    prefix: str

    def newsmon(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(NEWSMON), *args, "-c", str(self.config)], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(NEWSMON), *args, "-c", str(self.config)], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def publish(self, items: Sequence[RawItem]) -> None:
        publisher = KafkaPublisher(self.kafka)
        try:
            for start in range(0, len(items), 500):
                publisher.publish(items[start:start + 500])
        finally:
            publisher.close()

    def indexed_item_ids(self) -> list[str]:
        """The item id of every article document, duplicates included."""
        index = f"{self.prefix}-articles"
        httpx.post(f"{self.es_url}/{index}/_refresh", timeout=60)
        response = httpx.post(f"{self.es_url}/{index}/_search", timeout=60, json={
            "size": 10_000, "_source": ["item_id"], "query": {"match_all": {}}})
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [hit["_source"]["item_id"] for hit in response.json()["hits"]["hits"]]

    def articles(self) -> int:
        index = f"{self.prefix}-articles"
        try:
            response = httpx.post(f"{self.es_url}/{index}/_count", timeout=10,
                                  json={"query": {"match_all": {}}})
        except httpx.HTTPError:
            return -1
        return int(response.json().get("count", 0)) if response.status_code == 200 else 0

    def docs(self, kind: str) -> list[dict[str, object]]:
        index = f"{self.prefix}-{kind}"
        httpx.post(f"{self.es_url}/{index}/_refresh", timeout=60)
        response = httpx.post(f"{self.es_url}/{index}/_search", timeout=60,
                              json={"size": 10_000, "query": {"match_all": {}}})
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [hit["_source"] for hit in response.json()["hits"]["hits"]]


def setup(tmp_path: Path, kafka: str, es_url: str, *, alerts: str | None = None,
          feeds: str = "sources: []\n", request_timeout_ms: int = 12_000) -> Setup:
    tag = uuid.uuid4().hex[:8]
    prefix = f"f{tag}"
    (tmp_path / "feeds.yaml").write_text(feeds)
    alerts_path = ROOT / "config" / "alerts.yaml"
    if alerts is not None:
        alerts_path = tmp_path / "alerts.yaml"
        alerts_path.write_text(alerts)
    config = tmp_path / "newsmon.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\nfeeds: feeds.yaml\n"
                      f"topics: {ROOT / 'config' / 'topics.yaml'}\nalerts: {alerts_path}\n")
    kafka_settings = KafkaSettings(bootstrap_servers=kafka, raw_topic=f"fault-raw-{tag}",
                                   dead_letter_topic=f"fault-dead-{tag}",
                                   group_id=f"fault-group-{tag}",
                                   request_timeout_ms=request_timeout_ms)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "NEWSMON_KAFKA__BOOTSTRAP_SERVERS": kafka,
        "NEWSMON_KAFKA__RAW_TOPIC": kafka_settings.raw_topic,
        "NEWSMON_KAFKA__DEAD_LETTER_TOPIC": kafka_settings.dead_letter_topic,
        "NEWSMON_KAFKA__GROUP_ID": kafka_settings.group_id,
        "NEWSMON_KAFKA__REQUEST_TIMEOUT_MS": str(request_timeout_ms),
        "NEWSMON_SEARCH__BACKEND": "elasticsearch",
        "NEWSMON_SEARCH__URL": es_url,
        "NEWSMON_SEARCH__INDEX_PREFIX": prefix,
        "NEWSMON_SEARCH__REQUEST_TIMEOUT_S": "10",
        "NEWSMON_SEARCH__MAX_RETRIES": "2",
    }
    return Setup(config, env, kafka_settings, es_url, prefix)


def wait_until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()


def exactly_once(indexed: Sequence[str], items: Sequence[RawItem]) -> tuple[int, int]:
    """(lost, duplicated) item counts."""
    expected = {item.item_id for item in items}
    seen: dict[str, int] = {}
    for item_id in indexed:
        seen[item_id] = seen.get(item_id, 0) + 1
    lost = len(expected - seen.keys())
    duplicated = sum(n - 1 for n in seen.values()) + len(seen.keys() - expected)
    return lost, duplicated


def record(test: str, **fields: object) -> None:
    """Append the measurements of one fault test to ``$NEWSMON_FAULTS_REPORT`` (JSON lines;
    docs/reliability.md is written from it) when that variable is set."""
    import json

    path = os.environ.get("NEWSMON_FAULTS_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"test": test, **fields}) + "\n")
