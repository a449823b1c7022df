"""`newsmon sources enable ID`: an operator re-enables a source the poller disabled after
repeated hard failures (docs/connectors.md, "Disabling")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.connectors.state import StateStore
from tests.connectors.feeds import embedded_config
from tests.connectors.server import LocalServer, Reply, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serve() as srv:
        yield srv


def write_config(tmp_path: Path, url: str) -> Path:
    return embedded_config(tmp_path, {
        # One hard failure disables: the first poll of a 404 does it.
        "defaults": {"disable_after": 1},
        "sources": [{"id": "gone-feed", "type": "rss", "url": url, "name": "Gone",
                     "lang": "en", "country": "GB"}]})


def states(runner: CliRunner, config: Path) -> dict[str, str]:
    shown = runner.invoke(app, ["sources", "--json", "--config", str(config)])
    # The only source failing or disabled: exit 4 (every enabled source failed).
    assert shown.exit_code == 4, shown.output
    return {h["id"]: h["state"] for h in json.loads(shown.stdout)}


def test_enable_clears_the_disabled_flag_and_the_failure_counts(
        server: LocalServer, tmp_path: Path) -> None:
    server.route("/gone", Reply(b"no such feed", 404))
    config = write_config(tmp_path, server.url("/gone"))
    runner = CliRunner()
    assert runner.invoke(app, ["run", "--config", str(config)]).exit_code == 3
    assert states(runner, config) == {"gone-feed": "disabled"}

    enabled = runner.invoke(app, ["sources", "enable", "gone-feed", "--config", str(config)])
    assert enabled.exit_code == 0, enabled.output
    assert "gone-feed enabled" in enabled.stdout
    assert states(runner, config) == {"gone-feed": "failing"}
    with StateStore(tmp_path / "state" / "connectors.sqlite") as state:
        health = state.health("gone-feed")
    assert (health.disabled, health.disabled_reason, health.hard_failures,
            health.next_due_at) == (False, None, 0, None)

    # Enabling again changes nothing and says so.
    again = runner.invoke(app, ["sources", "enable", "gone-feed", "--config", str(config)])
    assert again.exit_code == 0 and "not disabled" in again.stdout


def test_an_unknown_id_is_a_usage_error_naming_the_sources(tmp_path: Path) -> None:
    config = write_config(tmp_path, "https://example.org/feed.xml")
    result = CliRunner().invoke(app, ["sources", "enable", "nope", "--config", str(config)])
    assert result.exit_code == 2
    assert "no source 'nope'" in result.stderr and "gone-feed" in result.stderr
