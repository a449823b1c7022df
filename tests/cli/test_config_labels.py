"""`newsmon config check` warns about unlabelled sources (they are valid: exit 0)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from tests.cli.test_config_errors import FEED, config_dir

pytestmark = pytest.mark.usefixtures("no_newsmon_environment")


def test_an_unlabelled_source_is_a_warning_not_an_error(tmp_path: Path) -> None:
    config = config_dir(tmp_path)
    labelled = FEED.replace("a-feed", "b-feed").replace(
        "country: GB}", "country: GB, kind: wire, owner: Thomson Reuters}")
    (tmp_path / "feeds.yaml").write_text(FEED + labelled[len("sources:\n"):])
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert warnings == [f"warning: {tmp_path / 'feeds.yaml'}: source a-feed is unlabelled "
                        "(no kind and no owner; see docs/connectors.md)"]
