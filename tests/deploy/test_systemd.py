"""deploy/systemd, validated offline with `systemd-analyze verify` (when installed) and read
for what the issue asks: a 5-minute timer for poll --once and for the batch pipeline, and a
stream service, each alternative conflicting with the other."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy import files

ANALYZE = shutil.which("systemd-analyze")
NEWSMON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "newsmon"


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    """The units as installed, with the paths of this machine: no unknown key, no bad value."""
    assert ANALYZE is not None
    binary = shutil.which("newsmon") or str(NEWSMON)
    units = []
    for path in sorted(files.SYSTEMD.glob("newsmon-*.*")):
        text = path.read_text().replace("/opt/newsmon/venv/bin/newsmon", binary)
        text = text.replace("/etc/newsmon/newsmon.env", str(files.SYSTEMD / "newsmon.env.example"))
        (tmp_path / path.name).write_text(text)
        units.append(str(tmp_path / path.name))
    proc = subprocess.run([ANALYZE, "verify", *units], capture_output=True, text=True,
                          timeout=120, check=False)
    problems = [line for line in proc.stderr.splitlines()
                if "Special user" not in line]  # User=newsmon is created at install
    assert proc.returncode == 0 and not problems, proc.stderr


def test_timers_run_the_scheduled_units_every_five_minutes() -> None:
    for timer, service in (("newsmon-poll.timer", "newsmon-poll.service"),
                           ("newsmon-pipeline-batch.timer", "newsmon-pipeline-batch.service")):
        sections = files.unit(files.SYSTEMD / timer)
        assert sections["Timer"]["Unit"] == [service]
        calendar = sections["Timer"]["OnCalendar"][0]
        assert calendar.endswith("/5"), calendar
        assert (files.SYSTEMD / service).is_file()
        assert files.unit(files.SYSTEMD / service)["Service"]["Type"] == ["oneshot"]


def test_each_continuous_service_conflicts_with_its_scheduled_alternative() -> None:
    pairs = {"newsmon-poller.service": "newsmon-poll.timer",
             "newsmon-pipeline-stream.service": "newsmon-pipeline-batch.timer"}
    for service, timer in pairs.items():
        sections = files.unit(files.SYSTEMD / service)
        assert timer in sections["Unit"]["Conflicts"][0].split(), service
        assert sections["Service"]["Restart"] == ["on-failure"]
        assert sections["Install"]["WantedBy"] == ["multi-user.target"]


def test_every_unit_reads_the_environment_file_and_runs_unprivileged() -> None:
    for path in files.SYSTEMD.glob("*.service"):
        service = files.unit(path)["Service"]
        assert service["EnvironmentFile"] == ["/etc/newsmon/newsmon.env"], path.name
        assert service["User"] == ["newsmon"] and service["NoNewPrivileges"] == ["yes"]
        assert service["ProtectSystem"] == ["strict"], path.name
