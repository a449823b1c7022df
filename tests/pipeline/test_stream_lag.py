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


@pytest.mark.integration
def test_a_worker_exports_the_lag_of_its_own_partitions_only(
        kafka_settings: KafkaSettings) -> None:
    # Worker 1 of 2 reads and commits partitions 1, 3, 5: the lag of 0, 2, 4 is worker 0's to
    # report (two series of one partition from two workers double the group's lag on a sum).
    io_kafka.ensure_topics(kafka_settings)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    for partition in range(6):
        for _ in range(partition + 1):
            producer.send(kafka_settings.raw_topic, b"{}", partition=partition)
    producer.flush()
    producer.close()
    with StreamLag(kafka_settings, io_kafka.WorkerShare(1, 2)) as exporter:
        exporter.export()
    assert {p: lag(kafka_settings, p) for p in range(6)} == {
        0: None, 1: 2, 2: None, 3: 4, 4: None, 5: 6}
    with StreamLag(kafka_settings) as exporter:  # one worker: every partition
        exporter.export()
    assert [lag(kafka_settings, p) for p in range(6)] == [1, 2, 3, 4, 5, 6]
