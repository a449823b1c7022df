"""TLS and authentication to a real Elasticsearch with security on (tests/security/conftest.py).

The settings come the way an operator gives them: URL and CA in the environment or the YAML,
the API key or password only in the environment. A wrong key and an untrusted certificate
each end in one clear message, and no message, log line or command output contains a secret.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsmon.config import SearchSettings, load_settings
from newsmon.pipeline.store import SearchServerStore, StoreUnavailable
from tests.security.conftest import SecureElasticsearch

NEWSMON = Path(sys.executable).parent / "newsmon"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def settings_from(env: dict[str, str], tmp_path: Path) -> SearchSettings:
    config = tmp_path / "newsmon.yaml"
    config.write_text("search:\n  backend: elasticsearch\n  request_timeout_s: 20\n")
    return load_settings(config, environ=env).search


def base_env(es: SecureElasticsearch, prefix: str, *, ca: bool = True) -> dict[str, str]:
    env = {"NEWSMON_SEARCH__URL": es.url, "NEWSMON_SEARCH__INDEX_PREFIX": prefix}
    if ca:
        env["NEWSMON_SEARCH__CA_CERTS"] = str(es.ca)
    return env


def use(store: SearchServerStore) -> int:
    """Set up, write, read back: every kind of call the pipeline makes."""
    store.setup()
    now = datetime.now(UTC).isoformat()
    doc = {"doc_id": "d1", "story_id": "d1", "title": "TLS works", "text": "t", "url": "",
           "lang": "en", "published_at": now, "first_seen_at": now, "topic_names": []}
    assert store.bulk_write("articles", [("d1", doc)]) == []
    store.refresh("articles")
    assert store.get("articles", "d1") is not None
    return store.count("articles")


def test_api_key_over_tls_with_the_ca(secure_es: SecureElasticsearch, api_key: str,
                                      index_prefix: str, tmp_path: Path) -> None:
    env = base_env(secure_es, index_prefix) | {"NEWSMON_SEARCH__API_KEY": api_key}
    store = SearchServerStore(settings_from(env, tmp_path))
    assert use(store) == 1


def test_basic_authentication_over_tls(secure_es: SecureElasticsearch, index_prefix: str,
                                       tmp_path: Path) -> None:
    env = base_env(secure_es, index_prefix) | {"NEWSMON_SEARCH__USERNAME": secure_es.user,
                                               "NEWSMON_SEARCH__PASSWORD": secure_es.password}
    assert use(SearchServerStore(settings_from(env, tmp_path))) == 1


def test_a_wrong_api_key_is_a_clear_authentication_error(
        secure_es: SecureElasticsearch, api_key: str, index_prefix: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    wrong = api_key[:-6] + ("AAAAAA" if not api_key.endswith("AAAAAA") else "BBBBBB")
    env = base_env(secure_es, index_prefix) | {"NEWSMON_SEARCH__API_KEY": wrong}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreUnavailable) as info:
        SearchServerStore(settings_from(env, tmp_path)).setup()
    message = str(info.value)
    assert "authentication failed" in message and "HTTP 401" in message
    assert "NEWSMON_SEARCH__API_KEY" in message  # says what to fix
    for secret in (wrong, api_key, wrong[-20:]):
        assert secret not in message and secret not in repr(info.value)
        assert secret not in caplog.text


def test_a_missing_password_is_a_clear_authentication_error(
        secure_es: SecureElasticsearch, index_prefix: str, tmp_path: Path) -> None:
    env = base_env(secure_es, index_prefix)  # no credentials at all
    with pytest.raises(StoreUnavailable, match=r"authentication failed \(HTTP 401\)"):
        SearchServerStore(settings_from(env, tmp_path)).setup()


def test_an_untrusted_certificate_is_a_clear_tls_error(
        secure_es: SecureElasticsearch, api_key: str, index_prefix: str, tmp_path: Path) -> None:
    env = base_env(secure_es, index_prefix, ca=False) | {"NEWSMON_SEARCH__API_KEY": api_key}
    with pytest.raises(StoreUnavailable) as info:
        SearchServerStore(settings_from(env, tmp_path)).setup()
    message = str(info.value)
    assert "certificate" in message and "NEWSMON_SEARCH__CA_CERTS" in message
    assert api_key not in message


def test_plain_http_to_a_tls_server_is_a_clear_error(
        secure_es: SecureElasticsearch, api_key: str, index_prefix: str, tmp_path: Path) -> None:
    http = secure_es.url.replace("https://", "http://")
    env = base_env(secure_es, index_prefix, ca=False) | {"NEWSMON_SEARCH__URL": http,
                                                         "NEWSMON_SEARCH__API_KEY": api_key}
    with pytest.raises(StoreUnavailable, match="use https://") as info:
        SearchServerStore(settings_from(env, tmp_path)).setup()
    assert api_key not in str(info.value)
    # a CA for a plain-HTTP URL is a config error, named as one
    settings = settings_from(env | {"NEWSMON_SEARCH__CA_CERTS": str(secure_es.ca)}, tmp_path)
    assert settings.problems() == [
        "search.ca_certs: a CA bundle is given, but search.url is not https://"]


def run_cli(args: list[str], env: dict[str, str], tmp_path: Path
            ) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "newsmon.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\nsearch:\n  backend: elasticsearch\n")
    full = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **env}
    return subprocess.run([str(NEWSMON), "--verbose", *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=180, env=full)


def test_search_setup_from_the_command_line(secure_es: SecureElasticsearch, api_key: str,
                                            index_prefix: str, tmp_path: Path) -> None:
    """What an operator sees, with debug logging on: success with the key, a one-line
    reason with a wrong one, and the key in neither."""
    env = base_env(secure_es, index_prefix) | {"NEWSMON_SEARCH__API_KEY": api_key}
    ok = run_cli(["search", "setup"], env, tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "templates and indices ready" in ok.stdout
    wrong = env | {"NEWSMON_SEARCH__API_KEY": api_key[::-1]}
    failed = run_cli(["search", "setup"], wrong, tmp_path)
    assert failed.returncode == 1
    assert "authentication failed (HTTP 401)" in failed.stderr
    untrusted = {k: v for k, v in env.items() if k != "NEWSMON_SEARCH__CA_CERTS"}
    tls = run_cli(["search", "setup"], untrusted, tmp_path)
    assert tls.returncode == 1 and "certificate" in tls.stderr
    for proc, key in ((ok, api_key), (failed, api_key[::-1]), (tls, api_key)):
        assert key not in proc.stdout + proc.stderr
        assert secure_es.password not in proc.stdout + proc.stderr
