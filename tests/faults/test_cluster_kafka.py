"""Faults on a three-broker Kafka cluster (replication factor 3, min.insync.replicas 2) under
real ``newsmon`` processes: the leader of every raw-topic partition killed during a poll and
during a pipeline run, a rolling restart of all three brokers, and a broker stalled by
SIGSTOP. After each: every item the feeds served indexed exactly once, one alert per
alerting story, and the times to recover recorded.

The broker that leads the raw topic's partitions is also made the coordinator of the
pipeline's consumer group (the topic is created with that broker as every partition's
preferred leader), so one kill moves both the partitions and the group's offsets.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.cluster import (
    KAFKA,
    PARTITIONS,
    ClusterServices,
    KafkaView,
    Step,
    Workload,
    assert_exactly_once,
    counted,
    drain,
    run_step,
    search_setup,
    timed,
)
from tests.faults.helpers import (
    NEWSMON,
    Feeds,
    Setup,
    feed_server,
    in_topic,
    record,
    setup,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(900)]


@pytest.fixture
def kafka(cluster: ClusterServices) -> Iterator[KafkaView]:
    view = KafkaView(cluster.kafka)
    yield view
    view.close()


def prepared(cluster: ClusterServices, kafka: KafkaView, tmp_path: Path, feeds: Feeds,
             ) -> tuple[Setup, int]:
    """newsmon configured for the clusters, its indices replicated, and the raw topic
    created with one broker leading every partition and coordinating the group: that
    broker's number is returned."""
    env = setup(tmp_path, cluster.kafka, cluster.es_node(1), feeds=feeds.sources())
    search_setup(env)
    leader = kafka.coordinator(env.kafka.group_id)
    kafka.create_topic_led_by(env.kafka.raw_topic, leader)
    return env, leader


def test_newsmon_topics_are_replicated_on_three_brokers(cluster: ClusterServices,
                                                        kafka: KafkaView,
                                                        tmp_path: Path) -> None:
    """``newsmon pipeline topics`` lays the topics out for three brokers and says so:
    6 partitions, 3 replicas in sync, min.insync.replicas 2; a poll then publishes to them."""
    with feed_server(2, 5, tag="topics") as feeds:
        env = setup(tmp_path, cluster.kafka, cluster.es_node(1), feeds=feeds.sources())
        topics = env.newsmon("pipeline", "topics")
        assert topics.returncode == 0, topics.stderr[-2000:]
        poll = env.newsmon("poll", "--once")
    raw = env.kafka.raw_topic
    assert topics.stdout.splitlines() == [
        *(f"{topic}: created with 6 partitions, 3 replica(s), min.insync.replicas 2 for 3 "
          "broker(s)" for topic in (raw, env.kafka.dead_letter_topic)),
        # The sharded pollers' topics, poller.shard_partitions (60) each.
        f"{raw}.shards: created with 60 partitions, 3 replica(s), min.insync.replicas 2 for 3 "
        "broker(s)",
        f"{raw}.seen: created with 60 partitions, 3 replica(s), min.insync.replicas 2, "
        "cleanup.policy compact for 3 broker(s)"]
    assert poll.returncode == 0, poll.stdout + poll.stderr[-2000:]
    assert in_topic(env.kafka) == 10
    for topic in (env.kafka.raw_topic, env.kafka.dead_letter_topic):
        partitions = kafka.partitions(topic)
        assert len(partitions) == PARTITIONS
        assert all(isr == (1, 2, 3) for _, isr in partitions.values()), partitions
        assert kafka.topic_config(topic)["min.insync.replicas"] == "2"


@pytest.mark.cluster_quick
def test_leader_killed_during_a_pipeline_run(cluster: ClusterServices, kafka: KafkaView,
                                             tmp_path: Path) -> None:
    with feed_server(20, 30, tag="k9run", strikes_every=25) as feeds:
        env, leader = prepared(cluster, kafka, tmp_path, feeds)
        poll = env.newsmon("poll", "--once")
        assert poll.returncode == 0, poll.stdout + poll.stderr[-2000:]
        assert in_topic(env.kafka) == len(feeds.served) == 600

        run = env.start_writing(180)
        assert run.poll() is None, "the run ended before the broker could be killed"
        written_at_kill = env.articles()
        cluster.kill_node(KAFKA, leader)
        killed = time.monotonic()
        failover_s = timed(lambda: kafka.led_elsewhere(env.kafka.raw_topic, leader), killed, 90)
        stdout, stderr = run.communicate(timeout=400)
        first = Step(run.returncode, killed, time.monotonic(), stdout, stderr)
        # With two brokers of three: re-runs, if the first failed (the run after the restart
        # below shows that nothing is left either way).
        steps = drain(env) if first.returncode else []
        completed_s = round((steps[-2] if steps else first).ended - killed, 1)

    def nothing_left() -> None:
        again = run_step(env, "pipeline", "run")
        assert again.returncode == 0 and "processed 0 records" in again.stdout, \
            again.stderr[-2000:]

    recover_and_check(
        cluster, kafka, env, feeds, nothing_left,
        "cluster: partition leader and group coordinator kill -9 during a pipeline run",
        written_at_kill=written_at_kill, killed_broker=leader, first_run=first.returncode,
        first_run_last_line=first.last_line, runs=1 + len(steps) + 1, failover_s=failover_s,
        completed_s=completed_s)


def recover_and_check(cluster: ClusterServices, kafka: KafkaView, env: Setup, feeds: Feeds,
                      after_restart: Callable[[], None], fault: str,
                      **figures: object) -> None:
    """The killed broker started again and the raw topic back to three in-sync replicas; then
    ``after_restart``, the count, the record in docs/reliability.md and the exactly-once check."""
    restarting = time.monotonic()
    restart_s = cluster.start_cluster(KAFKA)
    replicated_s = timed(lambda: kafka.fully_replicated(env.kafka.raw_topic), restarting, 120)
    after_restart()
    counts = counted(env, feeds)
    record(fault, **counts, **figures, restart_s=round(restart_s, 1), replicated_s=replicated_s)
    assert figures["failover_s"] is not None, "no new leader for every partition within 90 s"
    assert_exactly_once(counts)


FEEDS = 24
PER_FEED = 25


def test_leader_killed_during_a_poll(cluster: ClusterServices, kafka: KafkaView,
                                     tmp_path: Path) -> None:
    rng = random.Random(7)
    delays = [rng.uniform(0.3, 0.8) for _ in range(FEEDS)]
    with feed_server(FEEDS, PER_FEED, tag="k9poll", delays=delays, strikes_every=10) as feeds:
        env, leader = prepared(cluster, kafka, tmp_path, feeds)
        poll = subprocess.Popen([str(NEWSMON), "poll", "--once", "-c", str(env.config)],
                                env=env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        at_kill: list[float] = []

        def kill_soon() -> None:
            # Once some feeds are in Kafka (most still to come), the leader dies.
            wait_until(lambda: in_topic(env.kafka) >= 3 * PER_FEED, 90, every_s=0.1)
            at_kill.append(in_topic(env.kafka))
            cluster.kill_node(KAFKA, leader)
            at_kill.append(time.monotonic())

        killer = threading.Thread(target=kill_soon)
        killer.start()
        stdout, stderr = poll.communicate(timeout=400)
        killer.join()
        assert len(at_kill) == 2, "the broker was not killed"
        published_at_kill, killed = at_kill
        assert published_at_kill < FEEDS * PER_FEED, "the poll was over before the kill"
        failover_s = timed(lambda: kafka.led_elsewhere(env.kafka.raw_topic, leader), killed, 90)
        first = Step(poll.returncode, killed, time.monotonic(), stdout, stderr)
        steps = drain(env)  # with two brokers of three
    completed_s = round(steps[-2].ended - killed, 1)

    recover_and_check(
        cluster, kafka, env, feeds, lambda: None,
        "cluster: partition leader and group coordinator kill -9 during a poll",
        published_at_kill=published_at_kill, killed_broker=leader, first_poll=first.returncode,
        first_poll_last_line=first.stdout.strip()[-200:], failover_s=failover_s,
        completed_s=completed_s)


#: Growing feeds for the faults under continuous work: each pass finds new items.
WORK_FEEDS = 12
WORK_PER_PASS = 10


def test_rolling_restart_of_all_brokers(cluster: ClusterServices, kafka: KafkaView,
                                        tmp_path: Path) -> None:
    """Each broker in turn stopped cleanly and started again, the next only once every
    partition is back to three in-sync replicas, while polls and pipeline runs go on."""
    rng = random.Random(11)
    delays = [rng.uniform(0.2, 0.6) for _ in range(WORK_FEEDS)]
    with feed_server(WORK_FEEDS, WORK_PER_PASS, tag="rolling", growing=True, delays=delays,
                     strikes_every=7) as feeds:
        env, _ = prepared(cluster, kafka, tmp_path, feeds)
        restarts = []
        with Workload(env) as work:
            assert wait_until(lambda: in_topic(env.kafka) > 0, 120)
            began = time.monotonic()
            for node in (1, 2, 3):
                stop_s = cluster.stop_node(KAFKA, node)
                start_s = cluster.start_cluster(f"{KAFKA}:{node}")
                replicated_s = timed(lambda: kafka.fully_replicated(env.kafka.raw_topic),
                                     time.monotonic(), 120)
                assert replicated_s is not None, f"broker {node}: partitions under-replicated"
                restarts.append({"node": node, "stop_s": round(stop_s, 1),
                                 "start_s": round(start_s, 1), "replicated_s": replicated_s})
            rolled_s = round(time.monotonic() - began, 1)
        steps = drain(env)
    figures = counted(env, feeds)
    record("cluster: rolling restart of the three brokers during polls and pipeline runs",
           **figures, **work.summary(), restarts=restarts, rolling_restart_s=rolled_s,
           drain_steps=len(steps))
    assert_exactly_once(figures)


#: Longer than the failover it waits for: 7.9-12.8 s measured under load (the controller
#: waits out the broker's 9 s session first).
STALL_S = 20


@pytest.mark.cluster_quick
def test_broker_stalled_by_sigstop(cluster: ClusterServices, kafka: KafkaView,
                                   tmp_path: Path) -> None:
    """The leader of every raw partition (and the group's coordinator) frozen for longer
    than the brokers' session timeout (9 s), then let go, while polls and pipeline runs go
    on: its partitions move to the others, it rejoins when it wakes."""
    rng = random.Random(13)
    delays = [rng.uniform(0.2, 0.6) for _ in range(WORK_FEEDS)]
    with feed_server(WORK_FEEDS, WORK_PER_PASS, tag="stall", growing=True, delays=delays,
                     strikes_every=7) as feeds:
        env, leader = prepared(cluster, kafka, tmp_path, feeds)
        with Workload(env) as work:
            assert wait_until(lambda: in_topic(env.kafka) > 0, 120)
            with cluster.stalled(KAFKA, leader):
                stalled = time.monotonic()
                failover_s = timed(lambda: kafka.led_elsewhere(env.kafka.raw_topic, leader),
                                   stalled, STALL_S)
                time.sleep(max(0.0, STALL_S - (time.monotonic() - stalled)))
            resumed = time.monotonic()
            replicated_s = timed(lambda: kafka.fully_replicated(env.kafka.raw_topic), resumed,
                                 120)
            # Some work after the broker is back, before the work stops.
            passes = len(work.passes)
            wait_until(lambda: len(work.passes) > passes, 60)
        steps = drain(env)
    figures = counted(env, feeds)
    record(f"cluster: partition leader and group coordinator stalled (SIGSTOP) {STALL_S} s, "
           "SIGCONT",
           **figures, **work.summary(), stalled_broker=leader, failover_s=failover_s,
           replicated_after_cont_s=replicated_s, drain_steps=len(steps))
    assert failover_s is not None, f"the partitions did not move within {STALL_S} s"
    assert replicated_s is not None, "the broker did not rejoin the in-sync replicas"
    assert_exactly_once(figures)
