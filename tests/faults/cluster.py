"""The three-broker Kafka and three-node Elasticsearch clusters the cluster fault tests break,
and what the tests read off them: partition leaders and in-sync replicas, group coordinators,
where the primaries of newsmon's indices are, and how long a failover took.

The clusters are started and stopped by ``deploy/local/services.sh`` (``kafka-cluster``,
``elasticsearch-cluster``) in a services directory of their own, so the shared single nodes
and the single-node fault tests' instances are never touched. newsmon itself is driven only
through its command line (tests/faults/helpers.py ``setup``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from tests.conftest import ROOT, local_helpers
from tests.faults.conftest import FaultServices
from tests.faults.helpers import Feeds, Setup, lost_and_duplicated, wait_until

CLUSTER_HOME = Path(os.environ.get("NEWSMON_CLUSTER_SERVICES_HOME",
                                   ROOT / ".services-cluster"))
KAFKA = "kafka-cluster"
SEARCH = "elasticsearch-cluster"
NODES = (1, 2, 3)
#: Partitions of the raw topic the tests create (the cluster's num.partitions as well).
PARTITIONS = 6
#: Kafka's group metadata topic has this many partitions in the cluster's broker config.
OFFSETS_PARTITIONS = 10


def es_node_name(number: int) -> str:
    """The node.name services.sh gives Elasticsearch cluster node ``number``."""
    return f"newsmon-es-c{number}"


@dataclass
class ClusterServices(FaultServices):
    """The clusters of one test session: addresses from the services env file, pids from
    the node directories services.sh keeps."""

    @property
    def kafka(self) -> str:
        return self.env_file()["NEWSMON_KAFKA_CLUSTER_BOOTSTRAP"]

    def kafka_node(self, number: int) -> str:
        return self.env_file()[f"NEWSMON_KAFKA_CLUSTER_NODE_{number}"]

    def es_node(self, number: int) -> str:
        return self.env_file()[f"NEWSMON_ELASTICSEARCH_CLUSTER_NODE_{number}"]

    def node_pid(self, cluster: str, number: int) -> int:
        if cluster == KAFKA:
            path = self.home / "kafka-cluster" / f"node-{number}" / "pid"
        else:
            files: Path = local_helpers().es_base(self.home)
            path = files / "cluster" / f"node-{number}" / "run" / "elasticsearch.pid"
        return int(path.read_text().strip())

    def kill_node(self, cluster: str, number: int) -> None:
        """``kill -9`` one node; returns when the process is gone."""
        pid = self.node_pid(cluster, number)
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: _gone(pid), 30, every_s=0.05), f"pid {pid} survived kill -9"

    @contextmanager
    def stalled(self, cluster: str, number: int) -> Iterator[None]:
        """SIGSTOP one node for the duration of the block, SIGCONT after it (also on error:
        a stopped JVM would outlive the session, since SIGTERM waits for SIGCONT)."""
        pid = self.node_pid(cluster, number)
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def start_cluster(self, *names: str) -> float:
        """``services.sh start`` (the nodes not running; it returns once all three are in the
        cluster); the seconds it took. Fails the test if it did not come back."""
        started = time.monotonic()
        proc = self.script("start", *names)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(names)} did not come back:\n{proc.stderr[-3000:]}",
                        pytrace=False)
        return time.monotonic() - started

    def stop_node(self, cluster: str, number: int) -> float:
        """A clean stop (SIGTERM, as ``services.sh stop cluster:N``); the seconds it took."""
        started = time.monotonic()
        proc = self.script("stop", f"{cluster}:{number}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        return time.monotonic() - started


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "zombie" in status


# ----------------------------------------------------------------------------- Kafka


class KafkaView:
    """Partition leaders and in-sync replicas as the cluster reports them (an admin client
    that gives up on a broker after 5 s, so a stalled broker does not stall the test)."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                                      client_id="newsmon-cluster-tests")

    def close(self) -> None:
        self.admin.close()

    def partitions(self, topic: str) -> dict[int, tuple[int, tuple[int, ...]]]:
        """partition -> (leader, in-sync replicas); leader -1 when there is none."""
        described = self.admin.describe_topics([topic])
        return {p["partition"]: (p["leader"], tuple(sorted(p["isr"])))
                for d in described for p in d["partitions"]}

    def leaders(self, topic: str) -> set[int]:
        return {leader for leader, _ in self.partitions(topic).values()}

    def led_elsewhere(self, topic: str, gone: int) -> bool:
        """Every partition of ``topic`` has a leader, and it is not broker ``gone``."""
        try:
            leaders = self.leaders(topic)
        except KafkaError:
            return False
        return bool(leaders) and not leaders & {gone, -1}

    def fully_replicated(self, topic: str, replicas: int = len(NODES)) -> bool:
        try:
            return all(len(isr) == replicas for _, isr in self.partitions(topic).values())
        except KafkaError:
            return False

    def topic_config(self, topic: str) -> dict[str, str]:
        from kafka.admin import ConfigResource, ConfigResourceType

        response = self.admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)])
        resources = response[0].resources if isinstance(response, list) else response.resources
        return {entry[0]: entry[1] for _, _, _, _, entries in resources for entry in entries}

    def coordinator(self, group: str) -> int:
        """The broker coordinating ``group``: the leader of its partition of the group
        metadata topic (Kafka: abs(groupId.hashCode()) % partitions)."""
        def found() -> bool:  # the first lookup creates the group metadata topic
            try:
                self.admin.list_consumer_group_offsets(group)
            except KafkaError:  # retriable: CoordinatorNotAvailable while it is created
                return False
            return True

        assert wait_until(found, 60, every_s=0.5), f"no coordinator for {group}"
        leaders = {p: leader for p, (leader, _) in
                   self.partitions("__consumer_offsets").items()}
        return leaders[java_hash_partition(group, OFFSETS_PARTITIONS)]

    def create_topic_led_by(self, topic: str, leader: int) -> None:
        """``topic`` with PARTITIONS partitions, three replicas each, broker ``leader`` the
        preferred (so the first) leader of all of them: one broker to kill takes every
        partition's leadership with it. The cluster's defaults apply otherwise
        (min.insync.replicas 2)."""
        others = [n for n in NODES if n != leader]
        assignment = {p: [leader, *(others if p % 2 else others[::-1])]
                      for p in range(PARTITIONS)}
        self.admin.create_topics([NewTopic(topic, replica_assignments=assignment)])
        assert wait_until(lambda: self.leaders(topic) == {leader}, 30), self.partitions(topic)


def java_hash_partition(key: str, partitions: int) -> int:
    """Kafka's Utils.abs(key.hashCode()) % partitions (Java's String.hashCode over UTF-16)."""
    h = 0
    data = key.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return (0 if h == -(1 << 31) else abs(h)) % partitions


# ----------------------------------------------------------------------------- Elasticsearch


def es(url: str, method: str, path: str, body: object = None, timeout: float = 60) -> object:
    response = httpx.request(method, f"{url}{path}", json=body, timeout=timeout)
    response.raise_for_status()
    return response.json()


def shards(url: str, prefix: str) -> list[dict[str, str]]:
    """Every shard copy of newsmon's indices: index, prirep (p/r), state, node."""
    found = es(url, "GET", f"/_cat/shards/{prefix}-*?format=json&h=index,prirep,state,node",
               timeout=10)
    assert isinstance(found, list)
    return found


def primaries_on(url: str, prefix: str) -> set[str]:
    """The nodes holding the started primaries of newsmon's indices."""
    return {s["node"] for s in shards(url, prefix)
            if s["prirep"] == "p" and s["state"] == "STARTED"}


def gather_primaries(url: str, prefix: str, node: str) -> None:
    """Move the primary of every newsmon index to ``node`` and give each its replica
    elsewhere again, then wait for green: one node to kill then holds every primary.

    An allocation filter moves the indices while they have no replica (a primary cannot be
    told to stay on a node while its replica goes elsewhere); once the filter is lifted, the
    replicas are built on the other nodes and the primaries stay where they are.
    """
    replicas = index_settings(url, prefix)
    es(url, "PUT", f"/{prefix}-*/_settings", {"index.number_of_replicas": 0,
                                               "index.routing.allocation.require._name": node})
    # Not _cluster/health?wait_for_no_relocating_shards: asked at once, it may answer before
    # the filter's relocations have begun.
    assert wait_until(lambda: settled_on(url, prefix, node), 90), shards(url, prefix)
    # The balancer may otherwise move a primary off the crowded node once the replicas are
    # built (seen: source-health's primary on another node); allocation, and so the promotion
    # of replicas when the node dies, is not affected.
    es(url, "PUT", "/_cluster/settings",
       {"persistent": {"cluster.routing.rebalance.enable": "none"}})
    es(url, "PUT", f"/{prefix}-*/_settings", {"index.routing.allocation.require._name": None,
                                               "index.number_of_replicas": max(replicas.values())})
    health = es(url, "GET", f"/_cluster/health/{prefix}-*?wait_for_status=green"
                "&wait_for_no_initializing_shards=true&timeout=90s", timeout=120)
    assert isinstance(health, dict) and health["status"] == "green", health
    assert primaries_on(url, prefix) == {node}, shards(url, prefix)


def settled_on(url: str, prefix: str, node: str) -> bool:
    """Every shard copy of newsmon's indices started, and on ``node``."""
    found = shards(url, prefix)
    return bool(found) and all(s["state"] == "STARTED" and s["node"] == node for s in found)


def index_settings(url: str, prefix: str) -> dict[str, int]:
    """index -> number_of_replicas, for newsmon's indices."""
    found = es(url, "GET", f"/{prefix}-*/_settings/index.number_of_replicas")
    assert isinstance(found, dict)
    return {name: int(body["settings"]["index"]["number_of_replicas"])
            for name, body in found.items()}


def timed(predicate: Callable[[], bool], since: float, timeout_s: float) -> float | None:
    """Seconds from ``since`` (a monotonic time) until ``predicate`` held, polling every
    0.2 s; None if it did not within ``timeout_s``."""
    if wait_until(predicate, timeout_s):
        return round(time.monotonic() - since, 1)
    return None


# ----------------------------------------------------------------------------- newsmon at work


@dataclass
class Step:
    """One finished ``newsmon`` process: exit status, when it ran (monotonic), last line."""

    returncode: int
    started: float
    ended: float
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return lines[-1][:200] if lines else ""


def run_step(env: Setup, *args: str, timeout: float = 300) -> Step:
    started = time.monotonic()
    proc = env.newsmon(*args, timeout=timeout)
    return Step(proc.returncode, started, time.monotonic(), proc.stdout, proc.stderr)


class Workload:
    """Poll passes (``poll --once --force``) and batch pipeline runs, each the real command
    in a process of its own, one after the other in two threads, until ``stop``: the work
    going on while a fault is injected."""

    def __init__(self, env: Setup) -> None:
        self.env = env
        self.passes: list[Step] = []
        self.runs: list[Step] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(self.passes, "poll")),
                         threading.Thread(target=self._loop, args=(self.runs, "pipeline"))]

    def _loop(self, steps: list[Step], kind: str) -> None:
        args = ("poll", "--once", "--force") if kind == "poll" else ("pipeline", "run")
        while not self._stop.is_set():
            steps.append(run_step(self.env, *args))

    def __enter__(self) -> Workload:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=600)

    def summary(self) -> dict[str, object]:
        def failed(steps: list[Step]) -> list[str]:
            return [s.last_line for s in steps if s.returncode != 0]
        return {"poll_passes": len(self.passes), "poll_failed": failed(self.passes),
                "pipeline_runs": len(self.runs), "pipeline_failed": failed(self.runs)}


def drain(env: Setup, tries: int = 3) -> list[Step]:
    """After a fault: poll passes until one succeeds, then pipeline runs until one succeeds
    and the next finds nothing left (every item published, processed and committed). Fails
    the test when that takes more than ``tries`` of either."""
    steps = []
    for _ in range(tries):
        steps.append(run_step(env, "poll", "--once", "--force"))
        if steps[-1].returncode == 0:
            break
    else:
        pytest.fail(f"no poll pass succeeded after the fault: {steps[-1].last_line}")
    for _ in range(tries):
        steps.append(run_step(env, "pipeline", "run"))
        if steps[-1].returncode == 0:
            break
    else:
        pytest.fail(f"no pipeline run succeeded after the fault: {steps[-1].stderr[-3000:]}")
    last = run_step(env, "pipeline", "run")
    assert last.returncode == 0 and "processed 0 records" in last.stdout, (
        last.stdout, last.stderr[-2000:])
    return [*steps, last]


def alert_counts(env: Setup) -> tuple[int, int, int]:
    """(stories, lost, duplicated) for the story alerts: every story with an article about a
    long-range strike must have exactly one alert of the rule long-range-strike."""
    stories = {str(doc["story_id"]) for doc in env.docs(
        "articles", fields=("story_id", "topic_names"))
        if "long_range_strike" in (doc.get("topic_names") or ())}  # type: ignore[operator]
    alerted = [str(a["story_id"]) for a in env.docs("alerts")
               if a.get("kind", "story") == "story" and a.get("rule") == "long-range-strike"]
    lost, duplicated = lost_and_duplicated(alerted, stories)
    return len(stories), lost, duplicated


def counted(env: Setup, feeds: Feeds) -> dict[str, int]:
    """Items the feeds served against the articles indexed (by URL), and alerting stories
    against their alerts: the figures of one fault."""
    lost, duplicated = lost_and_duplicated(env.indexed("url"), feeds.served)
    stories, alerts_lost, alerts_duplicated = alert_counts(env)
    return {"items": len(feeds.served), "lost": lost, "duplicated": duplicated,
            "alert_stories": stories, "alerts_lost": alerts_lost,
            "alerts_duplicated": alerts_duplicated}


def assert_exactly_once(figures: dict[str, int]) -> None:
    assert figures["items"] > 0 and figures["alert_stories"] > 0, figures
    assert (figures["lost"], figures["duplicated"]) == (0, 0), figures
    assert (figures["alerts_lost"], figures["alerts_duplicated"]) == (0, 0), figures


def search_setup(env: Setup) -> str:
    """``newsmon search setup`` on the cluster; its line, which must say it chose one
    replica for three data nodes."""
    done = env.newsmon("search", "setup")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 shard and 1 replica(s) per index for 3 data nodes" in done.stdout, done.stdout
    return done.stdout.strip()
