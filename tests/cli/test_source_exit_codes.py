"""`newsmon sources` and `newsmon doctor` exit statuses a scheduler can act on (issue 18):
0 no enabled source failing, 3 some are, 4 all are. Doctor used to print "all checks passed"
and exit 0 with every source failing. Real polls of a real local feed server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import EXIT_ALL_SOURCES_FAILED, EXIT_SOURCES_FAILED, app
from newsmon.exits import sources_exit
from tests.connectors.feeds import embedded_config
from tests.connectors.server import LocalServer, Reply, serve

ROOT = Path(__file__).resolve().parents[2]
FEED = (ROOT / "config" / "demo" / "feeds" / "world-wire.xml").read_bytes()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serve() as srv:
        srv.route("/good", Reply(FEED, headers={"Content-Type": "application/rss+xml"}))
        srv.route("/broken", Reply(b"upstream exploded", 500))
        yield srv


def config_with(tmp_path: Path, server: LocalServer, *paths: str) -> Path:
    return embedded_config(tmp_path, {"sources": [
        {"id": f"s{i}", "type": "rss", "url": server.url(p), "name": f"s{i}", "lang": "en",
         "country": "GB"} for i, p in enumerate(paths)]})


def statuses(config: Path) -> tuple[int, int, str]:
    """(sources exit, doctor exit, doctor's summary line) after one run."""
    runner = CliRunner()
    runner.invoke(app, ["run", "--config", str(config)])
    shown = runner.invoke(app, ["sources", "--config", str(config)])
    checked = runner.invoke(app, ["doctor", "--config", str(config)])
    return shown.exit_code, checked.exit_code, checked.stderr.strip().splitlines()[-1]


def test_every_source_failing_is_exit_4_for_sources_and_doctor(
        server: LocalServer, tmp_path: Path) -> None:
    sources, doctor, summary = statuses(config_with(tmp_path, server, "/broken", "/broken"))
    assert (sources, doctor) == (EXIT_ALL_SOURCES_FAILED, EXIT_ALL_SOURCES_FAILED) == (4, 4)
    assert summary == "doctor: 1 problem(s) found (exit 4)"


def test_some_sources_failing_is_exit_3(server: LocalServer, tmp_path: Path) -> None:
    sources, doctor, summary = statuses(config_with(tmp_path, server, "/good", "/broken"))
    assert (sources, doctor) == (EXIT_SOURCES_FAILED, EXIT_SOURCES_FAILED) == (3, 3)
    assert "problem(s) found" in summary


def test_every_source_fine_is_exit_0(server: LocalServer, tmp_path: Path) -> None:
    sources, doctor, summary = statuses(config_with(tmp_path, server, "/good"))
    assert (sources, doctor) == (0, 0)
    assert "problem(s)" not in summary


def test_sources_exit_counts_only_enabled_sources() -> None:
    assert sources_exit([]) == 0
    assert sources_exit(["never-polled", "ok", "off"]) == 0
    assert sources_exit(["failing", "off"]) == 4
    assert sources_exit(["disabled", "never-polled"]) == 3
