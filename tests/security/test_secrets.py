"""Secrets (search API key and password, Kafka SASL password) come only from the environment,
and no output shows them: not `config check`, not the logs of a failing run at debug level.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

NEWSMON = Path(sys.executable).parent / "newsmon"
SECRETS = {
    "NEWSMON_SEARCH__API_KEY": "api-KEY-0123456789abcdef",
    "NEWSMON_SEARCH__PASSWORD": "search-Pa55word-xyz",
    "NEWSMON_KAFKA__SASL_PASSWORD": "sasl-Pa55word-xyz",
}

pytestmark = pytest.mark.timeout(300)


def newsmon(args: list[str], config: Path, env: dict[str, str]
            ) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "HOME": str(config.parent), **env}
    return subprocess.run([str(NEWSMON), *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=180, env=full)


def leaked(output: str) -> list[str]:
    """Which secrets appear in ``output``, as themselves or base64-encoded (as in an
    Authorization header)."""
    found = []
    for name, value in SECRETS.items():
        forms = {value, base64.b64encode(value.encode()).decode(),
                 base64.b64encode(f"newsmon:{value}".encode()).decode()}
        found += [name for form in forms if form in output]
    return found


def write_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "newsmon.yaml"
    (tmp_path / "feeds.yaml").write_text("sources: []\n")
    root = Path(__file__).resolve().parents[2] / "config"
    config.write_text(f"state_dir: {tmp_path / 'state'}\nfeeds: feeds.yaml\n"
                      f"topics: {root / 'topics.yaml'}\nalerts: {root / 'alerts.yaml'}\n{extra}")
    return config


@pytest.mark.parametrize(("section", "key"), [
    ("search", "api_key"), ("search", "password"), ("kafka", "sasl_password")])
def test_a_secret_in_the_file_is_refused_without_repeating_it(tmp_path: Path, section: str,
                                                              key: str) -> None:
    config = write_config(tmp_path, f"{section}:\n  {key}: written-in-the-file-0123\n")
    proc = newsmon(["config", "check"], config, {})
    assert proc.returncode == 2
    assert f"{section}.{key}: secrets are read only from the environment" in proc.stderr
    assert f"NEWSMON_{section.upper()}__{key.upper()}" in proc.stderr
    assert "written-in-the-file-0123" not in proc.stdout + proc.stderr


def test_config_check_shows_every_secret_masked(tmp_path: Path) -> None:
    config = write_config(tmp_path, "search:\n  backend: elasticsearch\n  url: "
                                    "https://search.example:9200\n  username: newsmon\n"
                                    "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: "
                                    "SCRAM-SHA-512\n  sasl_username: newsmon\n")
    proc = newsmon(["config", "check"], config, SECRETS)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["search"]["api_key"] == shown["search"]["password"] == "**********"
    assert shown["kafka"]["sasl_password"] == "**********"
    assert leaked(proc.stdout + proc.stderr) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_failing_runs_at_debug_level_print_no_secret(tmp_path: Path) -> None:
    """Kafka and the search server unreachable, SASL and an API key configured, logging at
    debug level (kafka-python, urllib3 and elastic-transport all log there): whatever the
    commands say about the failure, no secret is in it."""
    port = closed_port()
    config = write_config(tmp_path, f"search:\n  backend: elasticsearch\n  url: "
                                    f"https://127.0.0.1:{port}\n  username: newsmon\n"
                                    f"  request_timeout_s: 2\n  max_retries: 0\n"
                                    f"kafka:\n  bootstrap_servers: 127.0.0.1:{port}\n"
                                    "  security_protocol: SASL_PLAINTEXT\n  sasl_mechanism: "
                                    "PLAIN\n  sasl_username: newsmon\n  request_timeout_ms: 3000\n")
    for command in (["--verbose", "search", "setup"], ["--verbose", "pipeline", "run"],
                    ["--verbose", "doctor"], ["--log-format", "json", "--verbose", "pipeline",
                                              "run"]):
        proc = newsmon(command, config, SECRETS)
        assert proc.returncode != 0, command
        assert leaked(proc.stdout + proc.stderr) == [], command
