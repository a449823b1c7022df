from pathlib import Path

import pytest

from newsmon.config import load_settings
from newsmon.configfile import ConfigError, load_model
from newsmon.pipeline.alerts.config import AlertsConfig

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_configs_validate() -> None:
    settings = load_settings(ROOT / "config" / "newsmon.yaml", environ={})
    assert settings.feeds == ROOT / "config" / "feeds.yaml"
    assert load_model(AlertsConfig, settings.alerts).rules


def test_environment_overrides_yaml(tmp_path: Path) -> None:
    path = tmp_path / "newsmon.yaml"
    path.write_text("search:\n  url: http://a:9200\n")
    env = {"NEWSMON_SEARCH__URL": "http://b:9200", "NEWSMON_SEARCH__API_KEY": "s3cr3t-key"}
    settings = load_settings(path, environ=env)
    assert settings.search.url == "http://b:9200"
    assert settings.search.api_key is not None
    assert "s3cr3t-key" not in repr(settings)


def test_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "newsmon.yaml"
    path.write_text("search:\n  bulk_batch_size: -1\n  colour: red\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    problems = err.value.problems
    assert any(p.startswith(f"{path}: search.bulk_batch_size:") for p in problems)
    assert any(p.startswith(f"{path}: search.colour:") for p in problems)


def test_secrets_in_yaml_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "newsmon.yaml"
    path.write_text("search:\n  password: hunter2\n")
    with pytest.raises(ConfigError, match=r"search\.password: secrets are read only"):
        load_settings(path, environ={})


def test_broken_yaml_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("rules: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_model(AlertsConfig, path)
