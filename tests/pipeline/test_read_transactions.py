"""The pipeline reads a raw topic that sharded pollers write in Kafka transactions: only
committed items, and a range that ends in a transaction marker is read to its end."""

from __future__ import annotations

import time

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from newsmon.config import KafkaSettings
from newsmon.pipeline.io_kafka import ReadPartitionRangeFn, snapshot_ranges


def _publish(kafka: KafkaSettings, values: list[bytes], *, commit: bool, name: str) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers,
                             transactional_id=f"{kafka.raw_topic}-{name}")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for value in values:
            producer.send(kafka.raw_topic, key=b"k", value=value, partition=0)
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    finally:
        producer.close()


def test_a_batch_reads_the_committed_items_and_stops_at_the_marker_behind_them(
        kafka_settings: KafkaSettings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    admin.create_topics([NewTopic(kafka_settings.raw_topic, 1, 1)])
    admin.close()
    _publish(kafka_settings, [b"kept-1", b"kept-2"], commit=True, name="a")
    _publish(kafka_settings, [b"aborted"], commit=False, name="b")
    _publish(kafka_settings, [b"kept-3"], commit=True, name="c")

    # 4 items and 3 markers: the range's end lies past the last item, on no record at all.
    # The coordinator writes a commit's markers after commit_transaction returns: wait for them.
    deadline = time.monotonic() + 20
    while (rng := snapshot_ranges(kafka_settings, kafka_settings.raw_topic,
                                  kafka_settings.group_id)[0]).end < 7:
        assert time.monotonic() < deadline, rng
        time.sleep(0.2)
    assert rng.end == 7
    started = time.monotonic()
    read = list(ReadPartitionRangeFn(kafka_settings, poll_timeout_ms=200).process(rng))
    # Before: the read waited for a record at the marker's offset, then failed the run with
    # "no progress" after 30 empty polls; and the aborted publish's item went through.
    assert [r.payload for r in read] == [b"kept-1", b"kept-2", b"kept-3"]
    assert time.monotonic() - started < 5
