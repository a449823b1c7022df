"""`newsmon config check` warns about unlabelled sources (they are valid: exit 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from tests.cli.test_config_errors import FEED, config_dir

pytestmark = pytest.mark.usefixtures("no_newsmon_environment")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A valid config whose feeds.yaml has an unlabelled source (a-feed) and a labelled one
    (b-feed: a wire of Thomson Reuters)."""
    config = config_dir(tmp_path)
    labelled = FEED.replace("a-feed", "b-feed").replace(
        "country: GB}", "country: GB, kind: wire, owner: Thomson Reuters}")
    (tmp_path / "feeds.yaml").write_text(FEED + labelled[len("sources:\n"):])
    return config


def test_an_unlabelled_source_is_a_warning_not_an_error(tmp_path: Path, config: Path) -> None:
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert warnings == [f"warning: {tmp_path / 'feeds.yaml'}: source a-feed is unlabelled "
                        "(no kind and no owner; see docs/connectors.md)"]


def test_sources_shows_each_sources_labels(config: Path) -> None:
    shown = CliRunner().invoke(app, ["sources", "--json", "-c", str(config)])
    rows = {row["id"]: (row["kind"], row["owner"]) for row in json.loads(shown.stdout)}
    assert rows == {"a-feed": (None, None), "b-feed": ("wire", "Thomson Reuters")}
    table = CliRunner().invoke(app, ["sources", "-c", str(config)]).stdout
    assert "wire · Thomson Reuters" in table
    assert "label" in table.splitlines()[2]
