"""Logs: one line per event, JSON on request with the source id; secrets never appear, not in
logs, not in `config check`, whatever the log level."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsmon import logs

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "NEWSMON_SEARCH__PASSWORD": "pw-Xq7-never-log-me",
    "NEWSMON_SEARCH__API_KEY": "apikey-Zr9-never-log-me",
    "NEWSMON_KAFKA__SASL_PASSWORD": "sasl-Kd3-never-log-me",
    "WEBHOOK_TOKEN_FOR_TEST": "token-Wm2-never-log-me",
}


def test_json_lines_carry_the_source_id_and_stay_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json", stream=sys.stderr)
    try:
        log = logging.getLogger("newsmon.connectors.runner")
        log.info("source %s: %s new, %s updated items published", "bbc-world", 3, 0)
        log.warning("alert %s: delivery to %s failed", "a-1", "ops", extra={"channel": "ops"})
        try:
            raise ValueError("two\nlines")
        except ValueError:
            log.exception("source %s: connector failed", "feed-x")
    finally:
        logs.configure("text")
    lines = capsys.readouterr().err.strip().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 3
    assert events[0]["source_id"] == "bbc-world"
    assert events[0]["message"] == "source bbc-world: 3 new, 0 updated items published"
    assert events[0]["level"] == "info" and events[0]["ts"].endswith("+00:00")
    assert events[1]["alert_id"] == "a-1" and events[1]["channel"] == "ops"
    assert events[2]["source_id"] == "feed-x"
    assert events[2]["error"] == "ValueError: two\nlines" and "Traceback" in events[2]["traceback"]


def test_secret_values_are_masked_in_any_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.add_secret("pw-unit-never-log-me", username="newsmon")
    logs.configure("text", verbose=True, stream=sys.stderr)
    try:
        import base64

        basic = base64.b64encode(b"newsmon:pw-unit-never-log-me").decode()
        logging.getLogger("elastic_transport").debug("headers: Authorization: Basic %s", basic)
        logging.getLogger("newsmon.x").info("connecting with pw-unit-never-log-me")
    finally:
        logs.configure("text")
    err = capsys.readouterr().err
    assert "pw-unit-never-log-me" not in err and basic not in err
    assert err.count(logs.MASK) == 2


def test_a_slack_webhook_url_is_treated_as_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    from newsmon.pipeline.alerts.channels.webhook import SlackChannel
    from newsmon.pipeline.alerts.config import AlertsConfig

    url = "https://hooks.slack.example/services/T000/B000/XXXXsecretpath"
    logs.register_secrets([AlertsConfig(channels={"ops": SlackChannel(url=url)})])
    logs.configure("text", stream=sys.stderr)
    try:
        logging.getLogger("newsmon.pipeline.alerts.channels").warning("webhook %s: HTTP 500", url)
    finally:
        logs.configure("text")
    err = capsys.readouterr().err
    assert url not in err and f"webhook {logs.MASK}: HTTP 500" in err


def _newsmon(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsmon.cli", *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
                          check=False)


def _write_config(tmp: Path, kafka: str, search_url: str, backend: str, sasl: bool) -> Path:
    config = tmp / "newsmon.yaml"
    kafka_extra = (", sasl_mechanism: PLAIN, sasl_username: newsmon, security_protocol: "
                   "SASL_PLAINTEXT" if sasl else "")
    config.write_text(
        "state_dir: state\n"
        f"feeds: {ROOT / 'config' / 'demo' / 'feeds.yaml'}\n"
        f"topics: {ROOT / 'config' / 'topics.yaml'}\n"
        "alerts: alerts.yaml\n"
        f"kafka: {{bootstrap_servers: '{kafka}', raw_topic: sec-{tmp.name}, "
        f"group_id: sec-{tmp.name}, request_timeout_ms: 15000{kafka_extra}}}\n"
        f"search: {{backend: {backend}, url: '{search_url}', username: newsmon, "
        f"index_prefix: sec{abs(hash(tmp.name)) % 10**8}}}\n"
    )
    (tmp / "alerts.yaml").write_text(
        "channels:\n  ops:\n    type: webhook\n    url: http://127.0.0.1:9/hook\n"
        "    secret_env: WEBHOOK_TOKEN_FOR_TEST\n"
        "rules:\n  - {name: r, topic: long_range_strike, channels: [ops]}\n"
    )
    return config


def _forbidden() -> set[str]:
    import base64

    out = set(SECRETS.values())
    out |= {base64.b64encode(v.encode()).decode() for v in SECRETS.values()}
    for password in (SECRETS["NEWSMON_SEARCH__PASSWORD"], SECRETS["NEWSMON_KAFKA__SASL_PASSWORD"]):
        out.add(base64.b64encode(f"newsmon:{password}".encode()).decode())
    return out


def _run_all(config: Path) -> list[subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")} | SECRETS
    c = str(config)
    return [
        _newsmon("--verbose", "config", "check", "--config", c, env=env, cwd=config.parent),
        _newsmon("--verbose", "doctor", "--config", c, env=env, cwd=config.parent),
        _newsmon("--verbose", "--log-format", "json", "search", "setup", "--config", c,
                 env=env, cwd=config.parent),
        _newsmon("--verbose", "poll", "--once", "--config", c, env=env, cwd=config.parent),
        _newsmon("--verbose", "pipeline", "run", "--config", c, env=env, cwd=config.parent),
    ]


def _assert_no_secret(runs: list[subprocess.CompletedProcess[str]]) -> None:
    for proc in runs:
        text = proc.stdout + proc.stderr
        assert text.strip(), proc.args
        for secret in _forbidden():
            assert secret not in text, f"{secret!r} printed by {proc.args[3:]}"


def test_config_check_shows_secrets_masked(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "127.0.0.1:9", "http://127.0.0.1:9", "elasticsearch",
                           sasl=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")} | SECRETS
    check = _newsmon("config", "check", "--config", str(config), env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    shown = json.loads(check.stdout)
    assert shown["search"]["password"] == "**********"
    assert shown["search"]["api_key"] == "**********"
    assert shown["kafka"]["sasl_password"] == "**********"
    _assert_no_secret([check])


def test_no_secret_is_printed_with_debug_logging_when_services_are_down(tmp_path: Path) -> None:
    """Every command fails to connect (with SASL configured): error paths print no secret."""
    config = _write_config(tmp_path, "127.0.0.1:9", "http://127.0.0.1:9", "elasticsearch",
                           sasl=True)
    runs = _run_all(config)
    assert runs[1].returncode == 1  # doctor: nothing is reachable
    _assert_no_secret(runs)


@pytest.mark.integration
def test_no_secret_is_printed_with_debug_logging_on_a_real_run(
    tmp_path: Path, kafka_bootstrap: str, search_server: tuple[str, str]
) -> None:
    """Debug logging of a real poll -> Kafka -> pipeline -> search server run, with the
    credentials sent on every search request: no secret in any line."""
    backend, url = search_server
    config = _write_config(tmp_path, kafka_bootstrap, url, backend, sasl=False)
    runs = _run_all(config)
    poll, pipeline = runs[3], runs[4]
    assert poll.returncode == 0 and "new" in poll.stdout, poll.stderr[-2000:]
    assert pipeline.returncode == 0 and "processed" in pipeline.stdout, pipeline.stderr[-2000:]
    assert "DEBUG" in pipeline.stderr  # debug logging really was on
    _assert_no_secret(runs)
