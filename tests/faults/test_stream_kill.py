"""Stream mode on Prism, ``kill -9`` of its whole process group mid-stream, then a restart:
nothing lost and nothing duplicated, in articles and in alerts, on the real Kafka and
Elasticsearch.

The pipeline is the real ``newsmon pipeline run --mode stream`` in a session of its own, so
the signal takes the Prism job service it started with it. The shared broker and search
server are used (with names of the test's own): it is the pipeline that is killed here, not
a service.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition

from newsmon.pipeline.app import find_prism
from tests.conftest import _service
from tests.faults.helpers import NEWSMON, Setup, exactly_once, make_items, record, setup, wait_until


def _start_stream(env: Setup, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    # A session of its own: the kill below reaches Prism and the SDK workers too.
    return subprocess.Popen(
        [str(NEWSMON), "pipeline", "run", "--mode", "stream", "-c", str(env.config)],
        env=env.env, stdout=out, stderr=out, start_new_session=True)


def _offsets(env: Setup) -> tuple[int, int]:
    """(committed, end) summed over the raw topic's partitions."""
    consumer = KafkaConsumer(bootstrap_servers=env.kafka.bootstrap_servers,
                             group_id=env.kafka.group_id, enable_auto_commit=False)
    try:
        tps = [TopicPartition(env.kafka.raw_topic, p)
               for p in consumer.partitions_for_topic(env.kafka.raw_topic) or ()]
        end = consumer.end_offsets(tps)
        return sum(consumer.committed(tp) or 0 for tp in tps), sum(end.values())
    finally:
        consumer.close()


def _alert_problems(env: Setup, strike_docs: set[str]) -> tuple[int, int]:
    """(lost, duplicated) strike articles in alerts: lost, never in an alert; duplicated,
    in more than one alert of a rule or twice in one."""
    seen: dict[tuple[str, str], int] = {}
    for alert in env.docs("alerts", fields=("rule", "doc_ids")):
        for doc_id in alert["doc_ids"]:  # type: ignore[attr-defined]
            key = (str(alert["rule"]), str(doc_id))
            seen[key] = seen.get(key, 0) + 1
    alerted = {doc for _, doc in seen}
    return len(strike_docs - alerted), sum(n - 1 for n in seen.values())


def test_stream_killed_mid_stream_then_restarted_loses_and_duplicates_nothing(
        tmp_path: Path) -> None:
    started = time.monotonic()
    env = setup(tmp_path, _service("kafka"), _service("elasticsearch"))
    env.env["NEWSMON_PRISM"] = str(find_prism())  # fails loudly where there is no Prism
    log = tmp_path / "stream.log"
    # One corpus cut in three: texts differ across the parts (no exact copies).
    corpus = make_items(900, "sk", strikes_every=40)
    first, more, last = corpus[:400], corpus[400:700], corpus[700:]

    env.publish(first)
    run = _start_stream(env, log)
    try:
        assert wait_until(lambda: env.articles() >= 50 or run.poll() is not None, 90, 0.1), \
            log.read_text()[-3000:]
        # Commits are under way (the stream is past its start) ...
        assert wait_until(lambda: _offsets(env)[0] > 0, 60, 0.1), log.read_text()[-3000:]
        assert run.poll() is None, f"the stream ended before the kill:\n{log.read_text()[-3000:]}"
        env.publish(more)  # ... and more is in flight at the kill
        wait_until(lambda: env.articles() >= len(first) + 30, 10, 0.05)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(30)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    written_at_kill = env.articles()
    committed_at_kill, produced = _offsets(env)
    # Mid-stream: some offsets were committed, others not, so the restart must skip the one
    # part and repeat the other.
    assert 0 < committed_at_kill < produced, (committed_at_kill, produced)

    again = _start_stream(env, log)
    try:
        env.publish(last)
        expected = {i.item_id for i in corpus}
        assert wait_until(lambda: set(env.indexed_item_ids()) >= expected
                          or again.poll() is not None, 120, 0.5), log.read_text()[-3000:]
        # Everything acknowledged is committed by the next flushes.
        assert wait_until(lambda: _offsets(env)[0] == _offsets(env)[1], 20, 0.5)
        assert again.poll() is None, log.read_text()[-3000:]
        again.send_signal(signal.SIGTERM)
        again.wait(60)
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGKILL)

    items = corpus
    lost, duplicated = exactly_once(env.indexed_item_ids(), items)
    articles = env.docs("articles", fields=("item_id", "doc_id", "title"))
    strike_docs = {str(a["doc_id"]) for a in articles if str(a["title"]).startswith("Strike")}
    assert len(strike_docs) == sum(1 for i in items if i.title.startswith("Strike"))
    lost_alerts, duplicated_alerts = _alert_problems(env, strike_docs)
    record("stream mode on Prism, pipeline process group kill -9 mid-stream",
           items=len(items), runs=2, faults=1, written_before=written_at_kill,
           committed_at_kill=committed_at_kill, lost=lost, duplicated=duplicated,
           lost_alerts=lost_alerts, duplicated_alerts=duplicated_alerts,
           seconds=round(time.monotonic() - started, 1))
    assert (lost, duplicated) == (0, 0)
    assert (lost_alerts, duplicated_alerts) == (0, 0)
    httpx.delete(f"{env.es_url}/{env.prefix}-*", timeout=30)
