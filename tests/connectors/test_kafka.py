"""Publishing to a real Kafka broker (started by tests/conftest.py): keys, acks, and a broker
that is down during a poll: nothing lost, nothing duplicated."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from newsmon.config import KafkaSettings
from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.publisher import KafkaPublisher, Publisher, PublishError
from newsmon.connectors.rss import RssSource
from newsmon.connectors.runner import Poller
from newsmon.models import RawItem, SourceRef
from tests.connectors.feeds import Entry, rss
from tests.connectors.server import LocalServer, Reply

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def topic(kafka_settings: KafkaSettings) -> Iterator[str]:
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    admin.create_topics([NewTopic(kafka_settings.raw_topic, num_partitions=3,
                                  replication_factor=1)])
    yield kafka_settings.raw_topic
    admin.delete_topics([kafka_settings.raw_topic])
    admin.close()


def consume(bootstrap: str, topic: str, *, at_least: int, quiet_s: float = 2.0) -> list[object]:
    """Every record of ``topic``: waits for ``at_least``, then for ``quiet_s`` without more."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=int(quiet_s * 1000))
    records: list[object] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            before = len(records)
            records.extend(consumer)
            if len(records) >= at_least and len(records) == before:
                break
    finally:
        consumer.close()
    return records


def item(source: str, guid: str) -> RawItem:
    return RawItem.make(source=SourceRef(id=source, type="rss"), guid=guid, title=guid,
                        first_seen_at=NOW)


def test_items_reach_kafka_keyed_by_source_in_order(kafka_settings: KafkaSettings,
                                                    topic: str) -> None:
    items = [item("feed-a", "a1"), item("feed-b", "b1"), item("feed-a", "a2"),
             item("feed-a", "a3")]
    publisher = KafkaPublisher(kafka_settings)
    try:
        publisher.publish(items)
    finally:
        publisher.close()
    records = consume(kafka_settings.bootstrap_servers, topic, at_least=4)
    decoded = [(r.key.decode(), RawItem.from_json(r.value)) for r in records]  # type: ignore[attr-defined]
    assert sorted(i.item_id for _, i in decoded) == sorted(i.item_id for i in items)
    assert all(key == i.source.id for key, i in decoded)
    partitions = {r.partition for r in records if r.key == b"feed-a"}  # type: ignore[attr-defined]
    assert len(partitions) == 1  # one source, one partition: its items stay in order
    assert [i.guid for k, i in decoded if k == "feed-a"] == ["a1", "a2", "a3"]


def test_an_unreachable_broker_raises_publish_error(kafka_settings: KafkaSettings,
                                                    free_port: int) -> None:
    down = KafkaPublisher(kafka_settings.model_copy(
        update={"bootstrap_servers": f"127.0.0.1:{free_port}", "request_timeout_ms": 2000}))
    with pytest.raises(PublishError):
        down.publish([item("feed-a", "a1")])
    down.close()


class Switch:
    """Hands each batch to ``current``: lets a test take "Kafka" away and bring it back
    under one running poller."""

    def __init__(self, current: Publisher) -> None:
        self.current = current

    def publish(self, items: Sequence[RawItem]) -> None:
        self.current.publish(items)

    def close(self) -> None:
        self.current.close()


def test_kafka_down_during_a_poll_loses_nothing_and_duplicates_nothing(
    kafka_settings: KafkaSettings, topic: str, free_port: int, server: LocalServer,
    tmp_path: Path,
) -> None:
    entries = [Entry(guid=f"g{n}", title=f"Item {n}", link=f"https://n.example/{n}")
               for n in range(5)]
    server.route("/a", Reply(rss(entries[:3]), headers={"ETag": '"a1"'}))
    server.route("/b", Reply(rss(entries[3:])))
    config = FeedsConfig(
        defaults=Defaults(min_interval_s=0),
        sources=tuple(
            RssSource(id=sid, type="rss", url=server.url(path), name=sid, lang="en", country="GB")
            for sid, path in (("feed-a", "/a"), ("feed-b", "/b"))
        ),
    )
    down = KafkaPublisher(kafka_settings.model_copy(
        update={"bootstrap_servers": f"127.0.0.1:{free_port}", "request_timeout_ms": 2000}))
    up = KafkaPublisher(kafka_settings)
    switch = Switch(down)
    state = tmp_path / "state.sqlite"
    try:
        with Poller(config, state, switch) as poller:
            for _ in range(2):  # Kafka stays down over two polls
                report = poller.poll_once(force=True)
                assert {r.status for r in report.results} == {"publish-failed"}
                assert not report.ok
            switch.current = up  # Kafka is back
            recovered = poller.poll_once(force=True)
            assert recovered.ok and recovered.new_items == 5
            # the feed changes one item meanwhile: one update, nothing else
            server.route("/a", Reply(rss([entries[0], entries[1],
                                          Entry(guid="g2", title="Item 2, corrected")])))
            changed = poller.poll_once(force=True)
            assert changed.new_items == 0 and changed.updated_items == 1
        with Poller(config, state, up) as restarted:  # and a restart publishes nothing
            assert restarted.poll_once(force=True).new_items == 0
    finally:
        up.close()
        down.close()
    records = consume(kafka_settings.bootstrap_servers, topic, at_least=6)
    items = [RawItem.from_json(r.value) for r in records]  # type: ignore[attr-defined]
    assert len(items) == 6
    assert len({i.item_id for i in items}) == 5
    updates = [i for i in items if i.is_update]
    assert [u.title for u in updates] == ["Item 2, corrected"]
