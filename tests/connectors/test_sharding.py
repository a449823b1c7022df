"""The assignment of sources to shards: stable, balanced, pure; polite hosts kept together."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer, TopicPartition
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import KafkaSettings, PollerSettings
from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.hosts import HostLimit
from newsmon.connectors.sharding import (
    ShardMember,
    TransactionalPublisher,
    _ranges,
    assign,
    ensure_shard_topics,
    read_mark,
    seen_mark,
    shard_key,
    shard_names,
    shard_of,
)
from newsmon.connectors.state import StateStore
from newsmon.models import RawItem, SourceRef


def feeds(n: int, *, hosts: dict[str, HostLimit] | None = None,
          per_host: HostLimit | None = None) -> FeedsConfig:
    sources = [{"id": f"feed-{i}", "type": "rss", "url": f"https://site{i % 50}.example/{i}.xml",
                "name": f"Feed {i}", "lang": "en", "country": "GB"} for i in range(n)]
    defaults: dict[str, object] = {"hosts": hosts or {}}
    if per_host is not None:
        defaults["per_host"] = per_host
    return FeedsConfig.model_validate({"defaults": defaults, "sources": sources})


def test_shard_of_is_a_fixed_function_of_the_key() -> None:
    # Pinned values: a change of hash (or Python's salted hash() sneaking in) moves every
    # source of a running group at once.
    assert [shard_of(f"source:feed-{i}", 60) for i in range(5)] == [
        shard_of(f"source:feed-{i}", 60) for i in range(5)]
    assert shard_of("source:feed-0", 60) == 12
    assert shard_of("host:t.me", 60) == 51
    # Another interpreter, with another hash seed, agrees.
    code = ("from newsmon.connectors.sharding import shard_of;"
            "print(shard_of('source:feed-0', 60), shard_of('host:t.me', 60))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "12345"})
    assert out.stdout.split() == ["12", "51"]


def test_assignment_is_balanced() -> None:
    config = feeds(6000)
    shards = assign(config.sources, config.defaults, 60)
    assert len(shards) == 6000
    per_shard = Counter(shards.values())
    assert set(per_shard) == set(range(60))
    # 100 per shard on average; a uniform hash stays within +-40 % at this size.
    assert min(per_shard.values()) >= 60 and max(per_shard.values()) <= 140
    # Three pollers holding 20 shards each carry about a third of the sources each.
    members = Counter(shard % 3 for shard in shards.values())
    assert all(1800 <= n <= 2200 for n in members.values()), members


def test_assignment_is_pure_and_independent_of_order() -> None:
    config = feeds(300)
    first = assign(config.sources, config.defaults, 60)
    again = assign(reversed(config.sources), config.defaults, 60)
    assert first == again
    # Adding sources moves none of the others.
    more = feeds(400)
    grown = assign(more.sources, more.defaults, 60)
    assert {k: grown[k] for k in first} == first


def test_sources_of_a_polite_host_share_a_shard() -> None:
    # site1.example spaces its requests: every feed on it goes to one poller, whose host
    # gate then spaces them as one poller would.
    config = feeds(500, hosts={"site1.example": HostLimit(interval_s=2.0)})
    shards = assign(config.sources, config.defaults, 60)
    polite = {shards[s.id] for s in config.sources if "site1.example" in s.location}
    others = {shards[s.id] for s in config.sources if "site2.example" in s.location}
    assert len(polite) == 1
    assert len(others) > 1  # hosts without a floor are spread by source id
    assert shard_key(config.sources[1], config.defaults) == "host:site1.example"
    assert shard_key(config.sources[2], config.defaults) == "source:feed-2"


def test_a_floor_for_every_host_keys_every_source_by_its_host() -> None:
    config = feeds(200, per_host=HostLimit(interval_s=1.0))
    shards = assign(config.sources, config.defaults, 60)
    by_host: dict[str, set[int]] = {}
    for source in config.sources:
        by_host.setdefault(source.location.split("/")[2], set()).add(shards[source.id])
    assert all(len(found) == 1 for found in by_host.values())
    assert Defaults().per_host.interval_s == 0  # the default keys by source id


def test_seen_marks_round_trip() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    item = RawItem.make(source=SourceRef(id="feed-1", type="rss", name="Feed 1", lang="en",
                                         country="GB"),
                        guid="g1", url="https://site1.example/a", title="A", summary="B",
                        published_at=now, first_seen_at=now)
    key, value = seen_mark(item)
    assert read_mark(key, value) == ("feed-1", item.item_id, (item.revision, now))


def test_shard_lists_in_logs_are_ranges() -> None:
    assert _ranges([5, 0, 1, 2, 7, 9, 10]) == "0-2,5,7,9-10"
    assert _ranges([]) == "none"


# --- against the shared Kafka: the marks travel with the shard -----------------------------


def _item(source_id: str, n: int) -> RawItem:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    return RawItem.make(source=SourceRef(id=source_id, type="rss", name=source_id, lang="en",
                                         country="GB"),
                        guid=f"g{n}", url=f"https://site.example/{n}", title=f"T{n}",
                        summary=f"S{n}", published_at=now, first_seen_at=now)


def test_the_next_owner_of_a_shard_reads_its_committed_marks_only(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    conf = PollerSettings(shard_group="t", shard_member="a", shard_partitions=4)
    names = shard_names(kafka_settings, conf)
    ensure_shard_topics(kafka_settings, names, 4)
    shards = {"feed-1": 1, "feed-2": 2}
    published = [_item("feed-1", n) for n in range(3)]
    with closing(TransactionalPublisher(kafka_settings, names, shards, 10_000)) as publisher:
        publisher.publish(published)
    # An aborted publish (a poller that failed before its commit) leaves no mark to read.
    aborted = _item("feed-1", 99)
    producer = KafkaProducer(**kafka_settings.client_options(), transactional_id="t-aborted")
    producer.init_transactions()
    producer.begin_transaction()
    key, value = seen_mark(aborted)
    producer.send(names.seen, key=key, value=value, partition=1)
    producer.flush()
    producer.abort_transaction()
    producer.close()

    other = shard_names(kafka_settings, conf.model_copy(update={"shard_member": "b"}))
    with StateStore(tmp_path / "b.sqlite") as state:
        member = ShardMember(kafka_settings, conf, other, shards, state)
        assert not member.owns("feed-1")
        member.on_partitions_assigned([TopicPartition(names.seen, 1)])
        assert member.owns("feed-1") and not member.owns("feed-2")
        found = state.seen_revisions("feed-1", [i.item_id for i in [*published, aborted]])
        assert {k: v.revision for k, v in found.items()} == {
            i.item_id: i.revision for i in published}


def test_a_shard_is_given_up_only_after_its_polls_in_flight(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    conf = PollerSettings(shard_group="t", shard_member="a", shard_partitions=4)
    names = shard_names(kafka_settings, conf)
    ensure_shard_topics(kafka_settings, names, 4)
    with StateStore(tmp_path / "a.sqlite") as state:
        member = ShardMember(kafka_settings, conf, names, {"feed-1": 1, "feed-2": 2}, state)
        member.on_partitions_assigned([TopicPartition(names.control, 1),
                                       TopicPartition(names.control, 2)])
        assert member.changed() and not member.changed()
        assert member.claim(["feed-1", "feed-2", "feed-3"]) == {"feed-1", "feed-2"}
        member.release("feed-2")
        revoking = threading.Thread(
            target=member.on_partitions_revoked, args=([TopicPartition(names.control, 1)],))
        revoking.start()
        revoking.join(timeout=1.0)
        assert revoking.is_alive()  # feed-1's poll is still in flight
        with member.recording("feed-1") as mine:
            assert not mine  # its shard is going: the poll is dropped, not published
        member.release("feed-1")
        revoking.join(timeout=5)
        assert not revoking.is_alive()
        assert not member.owns("feed-1") and member.owns("feed-2")
        assert member.claim(["feed-1"]) == set()


def test_poll_once_does_not_shard(tmp_path: Path, no_newsmon_environment: None) -> None:
    (tmp_path / "newsmon.yaml").write_text(f"state_dir: {tmp_path / 'state'}\n")
    result = CliRunner().invoke(app, ["poll", "--once", "--shard-group", "g", "-c",
                                      str(tmp_path / "newsmon.yaml")])
    assert result.exit_code == 2, result.output
    assert "runs continuously" in result.output
    bad = CliRunner().invoke(app, ["poll", "--shard-group", "a b", "-c",
                                   str(tmp_path / "newsmon.yaml")])
    assert bad.exit_code == 2 and "shard name" in bad.output, bad.output


def test_a_dead_owners_open_transaction_is_waited_out(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    # A poller killed inside its publish leaves a transaction open; until the broker aborts it,
    # read_committed readers see nothing after its start, committed marks of later publishes
    # included. The next owner waits for the abort, then reads those (and not the dead one's).
    conf = PollerSettings(shard_group="t", shard_member="b", shard_partitions=4,
                          shard_transaction_timeout_ms=2_000)
    names = shard_names(kafka_settings, conf)
    ensure_shard_topics(kafka_settings, names, 4)
    dead = KafkaProducer(**kafka_settings.client_options(), transactional_id="t-dead",
                         transaction_timeout_ms=2_000)
    dead.init_transactions()
    dead.begin_transaction()
    unfinished = _item("feed-1", 50)
    key, value = seen_mark(unfinished)
    dead.send(names.seen, key=key, value=value, partition=1)
    dead.flush()
    later = _item("feed-1", 51)
    with closing(TransactionalPublisher(kafka_settings, names, {"feed-1": 1}, 10_000)) as pub:
        pub.publish([later])
    try:
        with StateStore(tmp_path / "b.sqlite") as state:
            member = ShardMember(kafka_settings, conf, names, {"feed-1": 1}, state)
            started = time.monotonic()
            member.on_partitions_assigned([TopicPartition(names.control, 1)])
            waited = time.monotonic() - started
            found = state.seen_revisions("feed-1", [unfinished.item_id, later.item_id])
            assert set(found) == {later.item_id}
            # The broker aborts 2 s after the start, checking every 10 s (its default).
            assert 0.5 < waited < 2 + 10 + 5, waited
    finally:
        dead.close(timeout=0)


def test_a_shard_group_without_kafka_fails_with_a_message(
        tmp_path: Path, no_newsmon_environment: None) -> None:
    # The shard topics are created through newsmon.kafka.ensure_topics, which checks the
    # connection first (KafkaUnavailable, not a KafkaError): still a message, not a traceback.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    (tmp_path / "feeds.yaml").write_text("sources: []\n")
    (tmp_path / "newsmon.yaml").write_text(
        f"state_dir: {tmp_path / 'state'}\nfeeds: feeds.yaml\n"
        f"kafka: {{bootstrap_servers: '127.0.0.1:{port}'}}\n")
    result = CliRunner().invoke(app, ["poll", "--shard-group", "g", "-c",
                                      str(tmp_path / "newsmon.yaml")])
    assert result.exit_code == 1, (result.output, result.exception)
    assert "the shard group cannot be joined: KafkaUnavailable" in result.output
