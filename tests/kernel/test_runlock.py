"""One run at a time per job: a scheduled run that finds the last one still going does nothing
and exits 75; a run killed with kill -9 leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.runlock import EXIT_LOCKED, RunLocked, run_lock

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_holder_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    with run_lock(tmp_path, "poll") as path:
        assert f"pid {os.getpid()} since " in path.read_text()
        with pytest.raises(RunLocked, match=rf"`newsmon poll` .*pid {os.getpid()}"), \
                run_lock(tmp_path, "poll"):
            pass
        with run_lock(tmp_path, "pipeline"):  # another job: no conflict
            pass
    with run_lock(tmp_path, "poll"):  # released
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; "
         "from newsmon.runlock import run_lock\n"
         "with run_lock(Path(sys.argv[1]), 'pipeline'):\n"
         "    print('held', flush=True); time.sleep(120)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"pid {holder.pid}"), run_lock(tmp_path, "pipeline"):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 5
        while True:  # the kernel drops the lock with the process
            try:
                with run_lock(tmp_path, "pipeline"):
                    break
            except RunLocked:
                assert time.monotonic() < deadline, "lock still held after the holder died"
                time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait(10)


@pytest.mark.parametrize(("command", "job"), [
    (["poll", "--once"], "poll"),
    (["pipeline", "run"], "pipeline"),
    (["pipeline", "run", "--mode", "stream"], "pipeline"),
    (["run"], "poll"),
    (["run"], "pipeline"),
])
def test_a_scheduled_run_finding_its_job_running_exits_75(
        tmp_path: Path, command: list[str], job: str) -> None:
    state = tmp_path / "state"
    config = tmp_path / "newsmon.yaml"
    (tmp_path / "feeds.yaml").write_text("sources: []\n")
    config.write_text(yaml.safe_dump({
        "state_dir": str(state), "feeds": "feeds.yaml",
        "topics": str(ROOT / "config" / "topics.yaml"),
        "alerts": str(ROOT / "config" / "alerts.yaml"),
        # Nothing listens here: a run that got past the lock would fail differently.
        "kafka": {"bootstrap_servers": "127.0.0.1:9", "request_timeout_ms": 11000},
        "search": {"backend": "embedded"}}))
    with run_lock(state, job):
        result = CliRunner().invoke(app, [*command, "--config", str(config)])
    assert result.exit_code == EXIT_LOCKED, result.output
    assert f"another `newsmon {job}` run is still going" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr
