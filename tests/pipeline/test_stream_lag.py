"""The stream's lag export against the shared Kafka: one consumer for the whole run (not one
per export), closed at the end, and gauges that follow the topic as it grows."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer

from newsmon import metrics
from newsmon.config import KafkaSettings
from newsmon.pipeline import io_kafka
from newsmon.pipeline.jobs import StreamLag


def lag(kafka: KafkaSettings, partition: int) -> float | None:
    return metrics.REGISTRY.get_sample_value("newsmon_kafka_lag", {
        "topic": kafka.raw_topic, "partition": str(partition), "group": kafka.group_id})


def publish(kafka: KafkaSettings, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    for _ in range(n):
        producer.send(kafka.raw_topic, key=b"k", value=b"{}", partition=0).get(timeout=30)
    producer.close()


@pytest.mark.integration
def test_one_consumer_serves_every_export_and_is_closed_at_the_end(
    kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    io_kafka.ensure_topics(kafka_settings)
    opened: list[KafkaConsumer] = []
    real = io_kafka._consumer

    def counting(settings: KafkaSettings, group_id: str | None) -> KafkaConsumer:
        opened.append(real(settings, group_id))
        return opened[-1]

    monkeypatch.setattr(io_kafka, "_consumer", counting)
    with StreamLag(kafka_settings) as exporter:
        publish(kafka_settings, 2)
        exporter.export()
        assert lag(kafka_settings, 0) == 2
        publish(kafka_settings, 3)
        exporter.export()
        exporter.export()
        # The same consumer sees the topic grow: its offsets are asked again, not cached.
        assert lag(kafka_settings, 0) == 5
        assert len(opened) == 1
    assert opened[0]._closed
