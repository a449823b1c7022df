"""A fault on the three-node Elasticsearch cluster (one replica per index, as ``newsmon search
setup`` chooses for three data nodes) under a real ``newsmon pipeline run``: the node that
holds every primary of newsmon's indices killed with ``kill -9`` mid-batch. After it: every
item the feeds served indexed exactly once, one alert per alerting story, and the times to
recover recorded.

newsmon's ``search.url`` names one node; it points at node 1 and the primaries are gathered on
node 2, so the client keeps its way in while the shards it writes to lose their primaries
(a deployment that must survive the loss of the node it talks to puts a load balancer or
several nodes behind that URL).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.faults.cluster import (
    SEARCH,
    ClusterServices,
    Step,
    assert_exactly_once,
    counted,
    drain,
    es_node_name,
    gather_primaries,
    run_step,
    search_setup,
    shards,
    timed,
)
from tests.faults.helpers import feed_server, in_topic, record, setup

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(900)]

#: The node holding the primaries (killed), and the node newsmon talks to (never killed).
PRIMARIES_NODE = 2
ENTRY_NODE = 1


def primaries_moved(url: str, prefix: str, gone: str) -> bool:
    """Every newsmon index has a started primary, on a node other than ``gone``."""
    try:
        found = shards(url, prefix)
    except httpx.HTTPError:  # a cluster electing a master answers 503 or times out
        return False
    indices = {s["index"] for s in found}
    placed = {s["index"] for s in found if s["prirep"] == "p" and s["state"] == "STARTED"
              and s["node"] not in (gone, None, "")}
    return bool(indices) and placed == indices


def green(url: str, prefix: str) -> bool:
    try:
        found = shards(url, prefix)
    except httpx.HTTPError:  # as above
        return False
    return bool(found) and all(s["state"] == "STARTED" for s in found)


@pytest.mark.cluster_quick
def test_node_with_the_primaries_killed_mid_batch(cluster: ClusterServices,
                                                  tmp_path: Path) -> None:
    with feed_server(20, 30, tag="esk9", strikes_every=25) as feeds:
        entry = cluster.es_node(ENTRY_NODE)
        env = setup(tmp_path, cluster.kafka, entry, feeds=feeds.sources())
        said = search_setup(env)
        victim = es_node_name(PRIMARIES_NODE)
        gather_primaries(entry, env.prefix, victim)
        poll = env.newsmon("poll", "--once")
        assert poll.returncode == 0, poll.stdout + poll.stderr[-2000:]
        assert in_topic(env.kafka) == len(feeds.served) == 600

        run = env.start_writing(180, every_s=0.1)
        assert run.poll() is None, "the run ended before the node could be killed"
        written_at_kill = env.articles()
        cluster.kill_node(SEARCH, PRIMARIES_NODE)
        killed = time.monotonic()
        failover_s = timed(lambda: primaries_moved(entry, env.prefix, victim), killed, 120)
        stdout, stderr = run.communicate(timeout=400)
        first = Step(run.returncode, killed, time.monotonic(), stdout, stderr)
        # With two nodes of three: re-runs, if the first failed (the run after the restart
        # below shows that nothing is left either way).
        steps = drain(env) if first.returncode else []
        completed_s = round((steps[-2] if steps else first).ended - killed, 1)

    restarting = time.monotonic()
    restart_s = cluster.start_cluster(f"{SEARCH}:{PRIMARIES_NODE}")
    green_s = timed(lambda: green(entry, env.prefix), restarting, 180)
    again = run_step(env, "pipeline", "run")
    assert again.returncode == 0 and "processed 0 records" in again.stdout, again.stderr[-2000:]
    figures = counted(env, feeds)
    record("cluster: Elasticsearch node holding every primary kill -9 mid-batch", **figures,
           setup=said, written_at_kill=written_at_kill, first_run=first.returncode,
           first_run_last_line=first.last_line, runs=1 + len(steps) + 1,
           failover_s=failover_s, completed_s=completed_s, restart_s=round(restart_s, 1),
           green_s=green_s)
    # start_writing() saw a first article; this later count may come from a replica that has
    # not refreshed yet and answer lower (even 0), so only the upper bound is checked here:
    # the kill came before the batch was done.
    assert written_at_kill < 600, written_at_kill
    assert failover_s is not None, "the replicas were not promoted within 120 s"
    assert green_s is not None, "the cluster was not green within 180 s of the restart"
    assert_exactly_once(figures)
