"""``kill -9`` of the Kafka broker during a poll and during a pipeline run, then a restart:
every item ends up indexed exactly once."""

from __future__ import annotations

import random
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import FaultServices
from tests.faults.helpers import (
    NEWSMON,
    exactly_once,
    feed_server,
    in_topic,
    record,
    setup,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_broker_killed_during_a_pipeline_run(faults: FaultServices, tmp_path: Path) -> None:
    env = setup(tmp_path, faults.kafka, faults.elasticsearch)
    items, run = env.run_on_new_items(1000, "k9run", strikes_every=100)
    written_at_kill = env.articles()
    faults.kill("kafka")
    _, stderr = run.communicate(timeout=240)
    assert run.returncode != 0, "the run cannot have committed with the broker gone"
    assert "offsets not committed" in stderr, stderr[-2000:]

    restart_s = faults.start("kafka")
    again = env.newsmon("pipeline", "run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"processed {len(items)} records" in again.stdout  # nothing had been committed
    assert "processed 0 records" in env.newsmon("pipeline", "run").stdout
    lost, duplicated = exactly_once(env.indexed_item_ids(), items)
    record("broker killed during a pipeline run", items=len(items), runs=3, faults=1,
           written_at_kill=written_at_kill, restart_s=round(restart_s, 1), lost=lost,
           duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)


FEEDS = 24
PER_FEED = 25


@pytest.fixture
def slow_feeds() -> Iterator[str]:
    """FEEDS feeds, each answered after 0.4-1.2 s, so a poll takes several seconds."""
    rng = random.Random(7)
    delays = [rng.uniform(0.4, 1.2) for _ in range(FEEDS)]
    with feed_server(FEEDS, PER_FEED, delays=delays) as feeds:
        yield feeds.base


def test_broker_killed_during_a_poll(faults: FaultServices, tmp_path: Path,
                                     slow_feeds: str) -> None:
    sources = "".join(
        f"  - {{id: feed-{n}, type: rss, url: '{slow_feeds}{n}', name: Feed {n}, lang: en,"
        " country: GB}\n" for n in range(FEEDS))
    env = setup(tmp_path, faults.kafka, faults.elasticsearch,
                feeds=f"defaults:\n  concurrency: 3\nsources:\n{sources}")
    # The poller's producer gives up on a dead broker after 3 s (the pipeline's consumer
    # needs more than Kafka's 10 s session timeout, the setup's default).
    poller_env = env.env | {"NEWSMON_KAFKA__REQUEST_TIMEOUT_MS": "3000"}
    poll = subprocess.Popen([str(NEWSMON), "poll", "--once", "-c", str(env.config)],
                            env=poller_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killed = threading.Event()

    published_at_kill: list[int] = []

    def kill_soon() -> None:
        # Once some feeds are in Kafka (most still to come), the broker dies.
        wait_until(lambda: in_topic(env.kafka) >= 3 * PER_FEED, 60, every_s=0.1)
        published_at_kill.append(in_topic(env.kafka))
        faults.kill("kafka")
        killed.set()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    stdout, _ = poll.communicate(timeout=300)
    killer.join()
    assert killed.is_set()
    assert poll.returncode != 0, "publishing cannot have succeeded for every feed"

    restart_s = faults.start("kafka")
    repoll = subprocess.run([str(NEWSMON), "poll", "--once", "--force", "-c", str(env.config)],
                            env=poller_env, capture_output=True, text=True, timeout=240)
    assert repoll.returncode == 0, repoll.stdout + repoll.stderr[-3000:]
    run = env.newsmon("pipeline", "run")
    assert run.returncode == 0, run.stderr[-3000:]

    indexed = env.indexed_item_ids()
    expected = FEEDS * PER_FEED
    lost = expected - len(set(indexed))
    duplicated = len(indexed) - len(set(indexed))
    record("broker killed during a poll", items=expected, runs=3, faults=1,
           published_at_kill=published_at_kill[0],
           first_poll=stdout.strip().splitlines()[0] if stdout.strip() else "",
           restart_s=round(restart_s, 1), lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
