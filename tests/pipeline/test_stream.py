"""Stream mode as one unbounded pipeline on Prism, and the batch run on Prism against
FnApiRunner: real Kafka, real Elasticsearch, the Prism binary `make prism` builds (a missing
one fails these tests)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewPartitions

from newsmon.config import KafkaSettings, SearchSettings
from newsmon.models import DeadLetter, RawItem
from newsmon.pipeline.app import RunContext, find_prism
from newsmon.pipeline.commit import lineage_of_letter, lineage_of_record, next_position
from newsmon.pipeline.io_kafka import ensure_topics
from newsmon.pipeline.jobs import run_kafka_batch, run_kafka_stream
from newsmon.pipeline.kafka_source import IdleBell, PollBudget
from newsmon.pipeline.latency import p50_p95
from newsmon.pipeline.store.mappings import ARTICLES_REFRESH_INTERVAL
from tests.conftest import _service, produce
from tests.pipeline.samples import CLOCKS, OTHER, sample_item
from tests.pipeline.test_pipeline_kafka import ctx_for, items


def test_the_commit_point_stops_at_the_first_place_not_acknowledged() -> None:
    # 5 -> 6 and 9 -> 12 (a gap in the offsets: compaction) are done, 6 -> 9 is not yet.
    done = {9: 12, 5: 6, 13: 14}
    assert next_position(5, done) == 6
    assert done == {9: 12, 13: 14}
    done[6] = 9
    assert next_position(6, done) == 12  # across the gap, and no further than 12
    assert done == {13: 14}


def test_the_polls_of_a_bundle_share_one_wait_and_stop_waiting_after_records() -> None:
    now = [100.0]
    budget = PollBudget(100, clock=lambda: now[0])
    budget.start()
    assert budget.next_timeout_ms() == 100  # the first poll may wait it all
    now[0] += 0.07
    assert budget.next_timeout_ms() == 30  # the second only what is left
    now[0] += 0.05
    assert budget.next_timeout_ms() == 0  # spent: the other partitions only look
    budget.start()  # a new bundle, a new budget
    assert budget.next_timeout_ms() == 100
    budget.records_found()  # records flowed: the bundle ends at once, so they are written
    assert budget.next_timeout_ms() == 0
    budget.start()
    assert budget.next_timeout_ms() == 100


@pytest.mark.integration
def test_the_idle_bell_rings_at_once_for_a_record_and_not_before(
        kafka_settings: KafkaSettings) -> None:
    # An idle stream resumed its reads at once and cycled bundles through Prism: 27% of a core
    # with nothing to read. Its idle bundles now wait on this bell, which a record must end
    # at once (the latency target) and nothing else may end early (the CPU).
    from kafka import KafkaProducer

    ensure_topics(kafka_settings)
    topic = kafka_settings.raw_topic
    tp0, tp2 = TopicPartition(topic, 0), TopicPartition(topic, 2)
    bell = IdleBell(kafka_settings)
    try:
        started = time.monotonic()
        assert bell.wait({tp0: 0, tp2: 0}, 1.0) == set()
        assert time.monotonic() - started >= 0.95

        producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
        later = threading.Timer(0.5, lambda: (producer.send(topic, b"x", partition=2),
                                              producer.flush()))
        started = time.monotonic()
        later.start()
        assert bell.wait({tp0: 0, tp2: 0}, 10.0) == {tp2}
        assert time.monotonic() - started < 3.0  # the record, not the 10 s
        later.join()
        producer.close()

        started = time.monotonic()
        assert bell.wait({tp2: 0}, 10.0) == {tp2}  # a record past the position is there
        assert time.monotonic() - started < 2.0
        assert bell.wait({tp0: 0, tp2: 1}, 0.5) == set()  # read already: no ring
    finally:
        bell.close()


def test_the_p95_of_few_samples_stays_within_them() -> None:
    p50, p95 = p50_p95([0.1, 0.2, 0.3, 0.4, 1.0])
    assert p50 == 0.3
    assert 0.4 < p95 <= 1.0  # the exclusive method gives 1.42 here, past the largest
    assert p50_p95([0.7]) == (0.7, 0.7)


def test_a_record_and_its_dead_letter_have_the_same_lineage() -> None:
    broken = b'{"schema_version": 1, "title": '
    assert lineage_of_record(broken) == lineage_of_letter(DeadLetter.make(
        stage="decode", error="x", source_id="s", payload=broken.decode()))
    item = sample_item("wire-a", "4", "Grain prices fall", OTHER)
    later_stage = DeadLetter.make(stage="normalize", error="x", source_id=item.source.id,
                                  payload=item.model_dump_json())
    assert lineage_of_record(item.to_json()) == lineage_of_letter(later_stage)
    other = RawItem.make(source=item.source, guid="g2", url=item.url + "2", title="t",
                         summary="another text", first_seen_at=item.first_seen_at)
    assert lineage_of_record(other.to_json()) != lineage_of_record(item.to_json())


def _distinct(name: str, tag: str) -> RawItem:
    """An item no other item of the test copies (an exact copy would not be written)."""
    return sample_item("wire-lat", f"{name}-{tag}", f"Grain market {name} {tag}",
                       f"Wheat prices moved in {name} trading ({tag}), dealers said.")


def _search(prefix: str) -> SearchSettings:
    return SearchSettings(backend="elasticsearch", url=_service("elasticsearch"),
                          index_prefix=prefix, bulk_batch_size=200)


def _kafka(tag: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=_service("kafka"), raw_topic=f"st-raw-{tag}",
                         dead_letter_topic=f"st-dead-{tag}", group_id=f"st-group-{tag}")


def _docs(search: SearchSettings, kind: str) -> list[dict[str, object]]:
    index = f"{search.index_prefix}-{kind}"
    httpx.post(f"{search.url}/{index}/_refresh", timeout=30)
    resp = httpx.post(f"{search.url}/{index}/_search", json={"size": 1000}, timeout=30)
    if resp.status_code in (404, 503):
        return []
    resp.raise_for_status()
    return [h["_source"] for h in resp.json()["hits"]["hits"]]


def _committed(kafka: KafkaSettings) -> tuple[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers,
                             group_id=kafka.group_id, enable_auto_commit=False)
    try:
        tps = [TopicPartition(kafka.raw_topic, p)
               for p in consumer.partitions_for_topic(kafka.raw_topic) or ()]
        return (sum(consumer.committed(tp) or 0 for tp in tps),
                sum(consumer.end_offsets(tps).values()))
    finally:
        consumer.close()


@contextmanager
def _streaming(ctx: RunContext, read: list[int]) -> Iterator[None]:
    """The stream running in a thread for the block; ``read`` gets what it returned."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            read.append(run_kafka_stream(ctx, stop, interval_s=0.3))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield
        assert not failure, failure
    finally:
        stop.set()
        worker.join(timeout=90)
    assert not worker.is_alive(), "the stream did not stop"
    assert not failure, failure


def _wait(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(predicate())  # type: ignore[operator]


@pytest.mark.integration
def test_stream_on_prism_writes_commits_and_reads_a_partition_added_while_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    find_prism()  # no Prism: fail here, loudly
    tag = uuid.uuid4().hex[:8]
    kafka, search = _kafka(tag), _search(f"st{tag}")
    ctx = ctx_for(tmp_path, kafka, search)
    ensure_topics(kafka)
    sample = items()
    produce(kafka, [(i.source.id, i.to_json()) for i in sample[:2]]
            + [("broken-source", b"{not json")])
    try:
        read: list[int] = []
        with _streaming(ctx, read):
            assert _wait(lambda: len(_docs(search, "articles")) == 2, 120)
            # Searchable within 200 ms of the write, not the server's 1 s (issue 14's
            # largest latency cut): the template sets it on every monthly index.
            index_settings = httpx.get(f"{search.url}/{search.index_prefix}-articles/_settings",
                                       timeout=30).json()
            assert {s["settings"]["index"].get("refresh_interval")
                    for s in index_settings.values()} == {ARTICLES_REFRESH_INTERVAL}
            latencies = []
            for n in range(12):
                item = _distinct(f"lat-{n}", tag)
                started = time.monotonic()
                produce(kafka, [(item.source.id, item.to_json())])
                assert _wait(lambda url=item.url: url in {
                    a["url"] for a in _docs(search, "articles")}, 30)
                latencies.append(time.monotonic() - started)
            # A partition added while the stream runs is found and read.
            admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
            try:
                partitions = len(admin.describe_topics([kafka.raw_topic])[0]["partitions"])
                admin.create_partitions({kafka.raw_topic: NewPartitions(partitions + 1)})
            finally:
                admin.close()
            from kafka import KafkaProducer

            producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
            late = _distinct("late", tag)
            producer.send(kafka.raw_topic, key=b"late", value=late.to_json(),
                          partition=partitions).get(30)
            producer.close()
            # (the next discovery tick: every 30 s)
            assert _wait(lambda: late.url in {a["url"] for a in _docs(search, "articles")}, 75)
            # Everything acknowledged (articles and the dead letter) is committed.
            assert _wait(lambda: _committed(kafka)[0] == _committed(kafka)[1], 30), \
                _committed(kafka)
        dead = _docs(search, "dead-letters")
        assert [(d["stage"], d["source_id"]) for d in dead] == [("decode", "broken-source")]
        assert len(_docs(search, "articles")) == 2 + 12 + 1
        # Each record read once: a discovery tick must not start a second reader of a
        # partition (it did, while its seen-set was a read-modify-write value).
        assert read == [3 + 12 + 1]
    finally:
        httpx.delete(f"{search.url}/{search.index_prefix}-*", timeout=30)
    with capsys.disabled():
        p50, p95 = p50_p95(latencies)
        print(f"\nstream on Prism, produce->searchable (with refresh): "
              f"p50 {p50:.2f}s p95 {p95:.2f}s")


@pytest.mark.integration
def test_batch_on_prism_gives_the_same_documents_and_alerts_as_fnapi(tmp_path: Path) -> None:
    find_prism()
    tag = uuid.uuid4().hex[:8]
    runs = {"FnApiRunner": (_kafka(f"{tag}a"), _search(f"sb{tag}a")),
            "PrismRunner": (_kafka(f"{tag}b"), _search(f"sb{tag}b"))}
    payloads = [(i.source.id, i.to_json()) for i in items()] + [("broken", b"{nope")]
    try:
        for runner, (kafka, search) in runs.items():
            produce(kafka, payloads)
            ctx = ctx_for(tmp_path / runner, kafka, search)
            assert run_kafka_batch(ctx, runner=runner).records == len(payloads)
            assert run_kafka_batch(ctx, runner=runner).records == 0  # committed

        def comparable(search: SearchSettings, kind: str) -> list[dict[str, object]]:
            return sorted(({k: v for k, v in d.items() if k not in CLOCKS}
                           for d in _docs(search, kind)), key=str)

        fn_search, prism_search = runs["FnApiRunner"][1], runs["PrismRunner"][1]
        for kind in ("articles", "alerts", "dead-letters"):
            fn_docs = comparable(fn_search, kind)
            assert fn_docs, kind
            prism_docs = comparable(prism_search, kind)
            differ = sorted({k for a, b in zip(fn_docs, prism_docs, strict=False)
                             for k in a.keys() | b.keys() if a.get(k) != b.get(k)})
            assert fn_docs == prism_docs, (kind, differ)
    finally:
        for _, search in runs.values():
            httpx.delete(f"{search.url}/{search.index_prefix}-*", timeout=30)
