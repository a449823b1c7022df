"""`newsmon pipeline topics` creates every topic the deployment uses, on the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import KafkaSettings


def _config(tmp_path: Path, kafka: KafkaSettings, shards: int) -> str:
    path = tmp_path / "newsmon.yaml"
    path.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"kafka: {{bootstrap_servers: '{kafka.bootstrap_servers}', "
        f"raw_topic: {kafka.raw_topic}, dead_letter_topic: {kafka.dead_letter_topic}}}\n"
        f"poller: {{shard_partitions: {shards}}}\n")
    return str(path)


def _topics(kafka: KafkaSettings, *names: str) -> dict[str, tuple[int, str | None]]:
    """name -> (partitions, cleanup.policy) of each existing topic among ``names``."""
    admin = KafkaAdminClient(**kafka.client_options())
    try:
        present = [n for n in names if n in set(admin.list_topics())]
        found = {}
        for name in present:
            (topic,) = admin.describe_topics([name])
            (response,) = admin.describe_configs([ConfigResource(
                ConfigResourceType.TOPIC, name, configs={"cleanup.policy": None})])
            policy = {e[0]: e[1] for r in response.resources for e in r[4]}.get("cleanup.policy")
            found[name] = (len(topic["partitions"]), policy)
        return found
    finally:
        admin.close()


@pytest.mark.integration
def test_topics_include_the_sharded_pollers_control_and_compacted_seen_topics(
        tmp_path: Path, kafka_settings: KafkaSettings, no_newsmon_environment: None) -> None:
    config = _config(tmp_path, kafka_settings, 7)
    raw, dead = kafka_settings.raw_topic, kafka_settings.dead_letter_topic
    control, seen = f"{raw}.shards", f"{raw}.seen"

    first = CliRunner().invoke(app, ["pipeline", "topics", "-c", config])
    assert first.exit_code == 0, first.output
    assert _topics(kafka_settings, raw, dead, control, seen) == {
        raw: (6, "delete"), dead: (6, "delete"), control: (7, "delete"), seen: (7, "compact")}
    assert f"{seen}: created with 7 partitions, 1 replica(s), min.insync.replicas 1, " \
        "cleanup.policy compact for 1 broker(s)" in first.output

    again = CliRunner().invoke(app, ["pipeline", "topics", "-c", config])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines() == [
        f"{topic}: exists, {n} partitions, 1 replica(s) (left as it is; 1 broker(s) alive)"
        for topic, n in ((raw, 6), (dead, 6), (control, 7), (seen, 7))]

    # The pollers would disagree about the shards: the command says so and fails.
    other = CliRunner().invoke(app, ["pipeline", "topics", "-c",
                                     _config(tmp_path, kafka_settings, 8)])
    assert other.exit_code != 0
    assert f"{control} has 7 partitions, not 8" in other.output


@pytest.mark.integration
def test_an_existing_seen_topic_without_compaction_is_named(
        tmp_path: Path, kafka_settings: KafkaSettings, no_newsmon_environment: None) -> None:
    seen = f"{kafka_settings.raw_topic}.seen"
    admin = KafkaAdminClient(**kafka_settings.client_options())
    try:
        admin.create_topics([NewTopic(seen, 3, 1)])
    finally:
        admin.close()
    result = CliRunner().invoke(app, ["pipeline", "topics", "-c",
                                      _config(tmp_path, kafka_settings, 3)])
    assert result.exit_code == 0, result.output
    assert (f"{seen}: exists, 3 partitions, 1 replica(s) (left as it is; 1 broker(s) alive); "
            "cleanup.policy is 'delete', not 'compact': set it by hand") in result.output
    assert _topics(kafka_settings, seen) == {seen: (3, "delete")}  # never changed


@pytest.mark.integration
def test_no_shard_topics_leaves_them_out(
        tmp_path: Path, kafka_settings: KafkaSettings, no_newsmon_environment: None) -> None:
    result = CliRunner().invoke(app, ["pipeline", "topics", "--no-shard-topics", "-c",
                                      _config(tmp_path, kafka_settings, 3)])
    assert result.exit_code == 0, result.output
    raw = kafka_settings.raw_topic
    assert set(_topics(kafka_settings, raw, f"{raw}.shards", f"{raw}.seen")) == {raw}
