"""The search server stopped in the middle of a batch (the run fails cleanly, or, told to,
waits for it to come back), and the pipeline process itself killed mid-run (``kill -9``, so
possibly between its writes and its offset commit; the injected crash at exactly that point
is tests/pipeline/test_pipeline_kafka.py): a run that fails says so and commits nothing; the
re-run completes; nothing is lost or duplicated."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.faults.conftest import FaultServices
from tests.faults.helpers import exactly_once, record, setup

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

def test_search_server_stopped_in_the_middle_of_a_batch(faults: FaultServices,
                                                        tmp_path: Path) -> None:
    """The default (search.unavailable_wait_s 0): the run fails at once, cleanly."""
    env = setup(tmp_path, faults.kafka, faults.elasticsearch)
    items, run = env.run_on_new_items(800, "es-stop", strikes_every=50)
    written_before = env.articles()
    faults.stop("elasticsearch")
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 1, (stdout, stderr[-3000:])
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("run failed, offsets not committed (safe to re-run):"), last

    restart_s = faults.start("elasticsearch")
    again = env.newsmon("pipeline", "run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"processed {len(items)} records" in again.stdout
    lost, duplicated = exactly_once(env.indexed_item_ids(), items)
    alerts = [a for a in env.docs("alerts") if a.get("kind", "story") == "story"]
    record("search server stopped in the middle of a batch", items=len(items), runs=2,
           faults=1, written_before=written_before, restart_s=round(restart_s, 1),
           failure=last[:160], lost=lost, duplicated=duplicated, alerts=len(alerts))
    assert (lost, duplicated) == (0, 0)
    assert alerts and len(alerts) == len({a["story_id"] for a in alerts})  # one per story


def test_a_run_told_to_wait_rides_out_a_search_server_restart(faults: FaultServices,
                                                              tmp_path: Path) -> None:
    """search.unavailable_wait_s: the server is killed mid-batch and restarted; the same run
    waits for it and completes, with nothing lost or duplicated."""
    env = setup(tmp_path, faults.kafka, faults.elasticsearch)
    env.env["NEWSMON_SEARCH__UNAVAILABLE_WAIT_S"] = "300"
    items, run = env.run_on_new_items(800, "es-wait", strikes_every=50)
    written_before = env.articles()
    faults.kill("elasticsearch")
    restart_s = faults.start("elasticsearch")
    stdout, stderr = run.communicate(timeout=480)
    assert run.returncode == 0, (restart_s, stderr[-3000:])
    assert f"processed {len(items)} records; offsets committed" in stdout
    assert "retrying in" in stderr  # it did wait
    lost, duplicated = exactly_once(env.indexed_item_ids(), items)
    record("search server kill -9 mid-batch, run waits (unavailable_wait_s 300)",
           items=len(items), runs=1, faults=1, written_before=written_before,
           restart_s=round(restart_s, 1), lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)


def test_pipeline_process_killed_mid_run(faults: FaultServices, tmp_path: Path) -> None:
    env = setup(tmp_path, faults.kafka, faults.elasticsearch)
    items, run = env.run_on_new_items(800, "kill9", strikes_every=100)
    assert run.poll() is None, "the run ended before it could be killed"
    os.kill(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    written_before = env.articles()
    again = env.newsmon("pipeline", "run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"processed {len(items)} records" in again.stdout  # nothing had been committed
    lost, duplicated = exactly_once(env.indexed_item_ids(), items)
    record("pipeline process kill -9 mid-run", items=len(items), runs=2, faults=1,
           written_before=written_before, lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
