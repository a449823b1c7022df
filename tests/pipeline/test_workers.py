"""M batch workers sharing the raw topic's partitions (issue 17, point 4): `--worker i/M`
reads each item once between the M, and each commits only its own partitions."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import KafkaSettings, SearchSettings
from newsmon.pipeline.io_kafka import (
    EVERY_PARTITION,
    TOPIC_PARTITIONS,
    WorkerShare,
    ensure_topics,
    snapshot_ranges,
)
from newsmon.pipeline.jobs import run_kafka_batch
from tests.cli.test_config_errors import config_dir
from tests.conftest import produce
from tests.pipeline.samples import OTHER, sample_item
from tests.pipeline.test_pipeline_kafka import ctx_for, hits


@pytest.mark.parametrize("count", range(1, 8))
def test_the_shares_of_m_workers_cover_every_partition_once(count: int) -> None:
    owners = {p: [i for i in range(count) if WorkerShare(i, count).owns(p)]
              for p in range(2 * TOPIC_PARTITIONS)}
    assert all(len(found) == 1 for found in owners.values()), owners


@pytest.mark.parametrize("text", ["2/2", "0/0", "-1/2", "a/b", "1", "1/", ""])
def test_a_bad_worker_share_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="worker"):
        WorkerShare.parse(text)


def test_a_worker_share_reads_as_written() -> None:
    assert WorkerShare.parse("1/4") == WorkerShare(1, 4)
    assert str(WorkerShare.parse(" 3 / 4")) == "3/4"


@pytest.mark.parametrize(("args", "said"), [
    (["--mode", "stream", "--worker", "0/2"], "--worker is for --mode batch"),
    (["--worker", "2/2"], "want i/M with 0 <= i < M"),
])
def test_the_cli_refuses_a_worker_it_cannot_honour(
        tmp_path: Path, args: list[str], said: str) -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", "-c", str(config_dir(tmp_path)),
                                      *args])
    assert result.exit_code == 2, result.output
    assert said in result.stderr


@pytest.mark.integration
def test_two_workers_read_every_item_once_and_commit_only_their_own(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings,
) -> None:
    ensure_topics(kafka_settings)  # 6 partitions on the shared broker
    items = [sample_item(f"wire-{n}", str(n), f"Grain prices fall in region {n}",
                         f"{OTHER} Region {n} reported its own figures on day {n}.")
             for n in range(24)]
    produce(kafka_settings, [(i.source.id, i.to_json()) for i in items])
    keyed = [r for r in snapshot_ranges(kafka_settings, kafka_settings.raw_topic,
                                        kafka_settings.group_id) if r.size]
    assert len(keyed) > 2  # 24 source ids spread over several partitions

    first = run_kafka_batch(ctx_for(tmp_path / "w0", kafka_settings, search_settings),
                            share=WorkerShare(0, 2))
    # Worker 0 committed its partitions only: worker 1's are all still to read.
    left = snapshot_ranges(kafka_settings, kafka_settings.raw_topic, kafka_settings.group_id)
    assert {r.partition for r in left if r.size} == {r.partition for r in keyed
                                                     if r.partition % 2 == 1}
    second = run_kafka_batch(ctx_for(tmp_path / "w1", kafka_settings, search_settings),
                             share=WorkerShare(1, 2))

    assert {r.partition for r in first.ranges} == {0, 2, 4}
    assert {r.partition for r in second.ranges} == {1, 3, 5}
    assert first.records + second.records == len(items)
    assert first.records and second.records
    assert run_kafka_batch(ctx_for(tmp_path / "all", kafka_settings, search_settings),
                           share=EVERY_PARTITION).records == 0
    assert sorted(str(a["url"]) for a in hits(search_settings, "articles")) == sorted(
        i.url for i in items)
