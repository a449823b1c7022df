"""`newsmon search kibana` (issue 18): objects for any index prefix, never over the repository's
file unless asked, and the path written said on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.ops.dashboards import ndjson

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "kibana" / "newsmon.ndjson"

pytestmark = pytest.mark.usefixtures("no_newsmon_environment")


def titles(text: str) -> set[str]:
    return {json.loads(line)["attributes"]["title"] for line in text.splitlines()
            if json.loads(line)["type"] == "index-pattern"}


def test_without_out_it_writes_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = SHIPPED.read_bytes()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["search", "kibana", "--prefix", "team-a"])
    assert result.exit_code == 0, result.stderr
    written = tmp_path / "kibana-team-a.ndjson"
    assert str(written) in result.stderr and "index prefix team-a" in result.stderr
    assert titles(written.read_text()) == {"team-a-articles", "team-a-alerts",
                                           "team-a-dead-letters", "team-a-source-health"}
    assert "newsmon-" not in written.read_text()
    assert SHIPPED.read_bytes() == before


def test_the_prefix_defaults_to_the_configured_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "newsmon.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\nsearch:\n  index_prefix: ops\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["search", "kibana", "-c", str(config), "--out", "-"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ndjson("ops")
    assert list(tmp_path.glob("*.ndjson")) == []  # stdout only


def test_a_bad_prefix_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["search", "kibana", "--prefix", "Team A",
                                      "--out", str(tmp_path / "k.ndjson")])
    assert result.exit_code == 2
    assert result.stderr.startswith("--prefix 'Team A': must be a search-server index name")
    assert not (tmp_path / "k.ndjson").exists()


def test_the_alert_search_has_a_url_column_and_the_labels_panel_exists() -> None:
    objects = [json.loads(line) for line in ndjson("x").splitlines()]
    alerts = next(o for o in objects if o["id"] == "x-latest-alerts-with-evidence")
    assert {"url", "sources_line", "corroborated"} <= set(alerts["attributes"]["columns"])
    dashboard = next(o for o in objects if o["type"] == "dashboard")
    assert dashboard["attributes"]["title"] == "newsmon overview (x)"
    panel_titles = {p["title"] for p in json.loads(dashboard["attributes"]["panelsJSON"])}
    assert {"Articles per source kind and country", "Articles by source label"} <= panel_titles
