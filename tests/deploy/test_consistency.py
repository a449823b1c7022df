"""deploy/ agrees with the code: every `newsmon ...` command line of Compose, Kubernetes and
systemd parses with the real CLI; every NEWSMON_* variable is a setting and every set of them
loads; the metrics ports line up across targets and within each one."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from newsmon.config import Settings, load_settings
from newsmon.ops.settings_doc import setting_env_names
from tests.deploy import files
from tests.deploy.files import CommandLine

COMMANDS = files.all_commands()


def test_the_deploy_files_run_the_commands_the_issue_asks_for() -> None:
    lines = {" ".join(c.argv[:4]) for c in COMMANDS}
    for expected in ("poll --once", "pipeline run --mode batch", "pipeline run --mode stream",
                     "poll --metrics-port 9464"):
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    for target in ("compose", "systemd", "cronjob-poll.yaml", "cronjob-pipeline-batch.yaml",
                   "deployment-pipeline-stream.yaml"):
        assert any(c.where.startswith(target) for c in COMMANDS), target


@pytest.mark.parametrize("line", COMMANDS, ids=lambda c: c.where)
def test_every_newsmon_command_line_parses_with_the_real_cli(line: CommandLine) -> None:
    try:
        files.parse_cli(line.argv)
    except Exception as exc:  # the CLI's usage errors (vendored click) share no public base
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"{line.where}: `newsmon {shlex.join(line.argv)}`: {message}")


def test_a_wrong_command_line_is_caught() -> None:
    """The check above can fail: options and values are really parsed."""
    for argv in (("pol", "--once"), ("poll", "--metrics-prot", "1"),
                 ("pipeline", "run", "--mode", "streaming")):
        with pytest.raises(Exception, match=r"No such|is not one of"):
            files.parse_cli(argv)


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\bNEWSMON_[A-Z0-9_]+", text))


@pytest.mark.parametrize("path", [
    files.COMPOSE, files.COMPOSE_ENV, files.DOCKERFILE, *sorted(files.K8S.glob("*.yaml")),
    *sorted(files.SYSTEMD.iterdir()),
], ids=lambda p: str(p.relative_to(files.ROOT)))
def test_every_newsmon_variable_names_a_setting(path: Path) -> None:
    known = setting_env_names() | files.NON_SETTING_VARIABLES
    unknown = _variables(path.read_text()) - known
    assert not unknown, f"{path.name}: not settings (see docs/settings.md): {sorted(unknown)}"


def _settings_from(env: dict[str, str]) -> Settings:
    newsmon_env = {k: v for k, v in env.items() if k.startswith("NEWSMON_")}
    return load_settings(Path("/nonexistent/newsmon.yaml"), environ=newsmon_env)


def test_the_environments_given_to_newsmon_load_as_settings() -> None:
    """Types and choices too: a NEWSMON_SEARCH__BACKEND=elastic would fail here."""
    doc = files.compose()
    dotenv = files.env_file(files.COMPOSE_ENV)
    for name, svc in files.newsmon_services(doc).items():
        env = {k: files.interpolate(str(v), dotenv) for k, v in svc["environment"].items()}
        settings = _settings_from(env)
        assert settings.search.backend == "elasticsearch", name
    for _path, resource in files.k8s_documents():
        if resource["kind"] == "ConfigMap" and resource["metadata"]["name"] == "newsmon-env":
            _settings_from(resource["data"])
            k8s_env = resource["data"]
    systemd_env = files.env_file(files.SYSTEMD / "newsmon.env.example", commented=True)
    _settings_from(systemd_env)
    for env in (k8s_env, systemd_env):
        assert env["NEWSMON_CONFIG_DIR"] == "/etc/newsmon"
        assert env["NEWSMON_LOG_FORMAT"] == "json"


def test_metrics_ports_are_the_same_everywhere() -> None:
    for line in COMMANDS:
        port = line.option("--metrics-port")
        if port is None:
            continue
        assert int(port) == files.METRICS_PORTS[line.argv[0]], line
        if not line.where.startswith("systemd"):
            # In a container the endpoint must listen beyond loopback to be scraped.
            assert line.option("--metrics-host") == "0.0.0.0", line
        else:
            assert line.option("--metrics-host") is None, "systemd: keep the loopback default"
    expose = next(c for c in files_dockerfile() if c[0] == "EXPOSE")[1]
    assert {int(p) for p in expose} == set(files.METRICS_PORTS.values())


def files_dockerfile() -> list[tuple[str, tuple[str, ...]]]:
    import dockerfile

    return [(c.cmd.upper(), tuple(c.value)) for c in dockerfile.parse_file(str(files.DOCKERFILE))]


def test_scheduled_runs_write_textfiles_and_continuous_ones_serve() -> None:
    for line in files.systemd_commands():
        continuous = "--once" not in line.argv and "batch" not in line.argv
        assert (line.option("--metrics-port") is not None) == continuous, line
        assert (line.option("--metrics-file") is not None) == (not continuous), line
        textfile = line.option("--metrics-file")
        if textfile:
            assert textfile.endswith(".prom") and textfile.startswith(
                "/var/lib/prometheus/node-exporter/")
