"""Config that passes the check but fails the run (issue 12, defect 7), as a class.

Every value a command hands to a client or to the disk is checked when the config is loaded:
URLs, ``host:port`` lists, Kafka topic and group names, index prefixes, mail addresses and
chat ids, periods (a year at most: 10**20 seconds crashed date arithmetic), floats (no
``.inf``/``.nan``), CA bundles and client certificates (loaded as the TLS clients load them),
the state directory (a directory we can write, or can create). A problem is one line naming
the file or the ``NEWSMON_*`` variable and the dotted key, with exit status 2, from
``newsmon config check`` and from every command that reads the file, before any service is
contacted. Each trigger below passed ``config check`` before and then crashed a command with
a traceback, or made every delivery or fetch of that channel or source fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = Path(sys.executable).parent / "newsmon"
BIG = "100000000000000000000"  # 10**20: passed `gt=0`, then overflowed datetime and SQLite

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("no_newsmon_environment")]

FEED = ("sources:\n  - {id: a-feed, type: rss, url: 'http://127.0.0.1:9/f', name: A, lang: en,"
        " country: GB}\n")
ALERT_RULE = "rules:\n  - {name: r, topic: troop_deployment, channels: [console, x]}\n"


TOPICS = (ROOT / "config" / "topics.yaml").read_text(encoding="utf-8")
EN_TERMS = (ROOT / "config" / "terms" / "en.yaml").read_text(encoding="utf-8")


def channel(spec: str) -> str:
    return f"channels:\n  console: {{type: console}}\n  x: {spec}\n" + ALERT_RULE


#: name -> (file, what goes into it, the dotted key the one line must name). For
#: newsmon.yaml the text is appended to a valid file; {tmp} is the config directory.
CASES: dict[str, tuple[str, str, str]] = {
    # search.url: what the elasticsearch and opensearch clients refuse, or cannot reach
    "search.url not a URL": ("newsmon.yaml", "search:\n  url: not a url\n", "search.url"),
    "search.url ftp": ("newsmon.yaml", "search:\n  url: ftp://127.0.0.1:9200\n", "search.url"),
    "search.url port out of range": ("newsmon.yaml", "search:\n  url: http://127.0.0.1:99999\n",
                                     "search.url"),
    "search.url port 0": ("newsmon.yaml", "search:\n  url: http://127.0.0.1:0\n", "search.url"),
    "search.url unclosed IPv6": ("newsmon.yaml", "search:\n  url: 'http://[::1:9200'\n",
                                 "search.url"),
    "search.url no host": ("newsmon.yaml", "search:\n  url: 'http:///x'\n", "search.url"),
    "search.url http without port, elasticsearch": (
        "newsmon.yaml", "search:\n  backend: elasticsearch\n  url: http://127.0.0.1\n",
        "search.url"),
    "search.index_prefix with a slash": ("newsmon.yaml", "search:\n  index_prefix: a/b\n",
                                         "search.index_prefix"),
    "search.index_prefix leading dash": ("newsmon.yaml", "search:\n  index_prefix: '-x'\n",
                                         "search.index_prefix"),
    "search.request_timeout_s inf": ("newsmon.yaml", "search:\n  request_timeout_s: .inf\n",
                                     "search.request_timeout_s"),
    "search.unavailable_wait_s nan": ("newsmon.yaml", "search:\n  unavailable_wait_s: .nan\n",
                                      "search.unavailable_wait_s"),
    "search.ca_certs missing": ("newsmon.yaml", "search:\n  url: https://127.0.0.1:9200\n"
                                "  ca_certs: /nonexistent/ca.pem\n", "search.ca_certs"),
    "search.ca_certs a directory": ("newsmon.yaml", "search:\n  url: https://127.0.0.1:9200\n"
                                    "  ca_certs: {tmp}\n", "search.ca_certs"),
    "search.ca_certs not PEM": ("newsmon.yaml", "search:\n  url: https://127.0.0.1:9200\n"
                                "  ca_certs: {tmp}/feeds.yaml\n", "search.ca_certs"),
    # kafka: what kafka-python refuses when a client is made, or cannot connect with
    "kafka brokers without port": ("newsmon.yaml", "kafka:\n  bootstrap_servers: kafka.example"
                                   "\n", "kafka.bootstrap_servers"),
    "kafka brokers port 0": ("newsmon.yaml", "kafka:\n  bootstrap_servers: '127.0.0.1:0'\n",
                             "kafka.bootstrap_servers"),
    "kafka brokers IPv6 without brackets": ("newsmon.yaml", "kafka:\n  bootstrap_servers: "
                                            "'::1:9092'\n", "kafka.bootstrap_servers"),
    "kafka brokers empty entry": ("newsmon.yaml", "kafka:\n  bootstrap_servers: 'a:1,,b:2'\n",
                                  "kafka.bootstrap_servers"),
    "kafka brokers Arabic-Indic digits": ("newsmon.yaml", "kafka:\n  bootstrap_servers: "
                                          "'127.0.0.1:\u0669\u0660\u0669\u0662'\n",
                                          "kafka.bootstrap_servers"),
    "kafka brokers not a host": ("newsmon.yaml", "kafka:\n  bootstrap_servers: 'not a host:1'\n",
                                 "kafka.bootstrap_servers"),
    "kafka topic with a space": ("newsmon.yaml", "kafka:\n  raw_topic: raw items\n",
                                 "kafka.raw_topic"),
    "kafka empty group": ("newsmon.yaml", "kafka:\n  group_id: ''\n", "kafka.group_id"),
    "kafka request timeout over the idle limit": (
        "newsmon.yaml", "kafka:\n  request_timeout_ms: 600000\n", "kafka.request_timeout_ms"),
    "kafka request timeout under the fetch wait": (
        "newsmon.yaml", "kafka:\n  request_timeout_ms: 400\n", "kafka.request_timeout_ms"),
    "kafka unknown SASL mechanism": ("newsmon.yaml", "kafka:\n  sasl_mechanism: FOO\n",
                                     "kafka.sasl_mechanism"),
    "kafka CA missing": ("newsmon.yaml", "kafka:\n  security_protocol: SSL\n  ssl_cafile: "
                         "/nonexistent/ca.pem\n", "kafka.ssl_cafile"),
    "kafka CA not PEM": ("newsmon.yaml", "kafka:\n  security_protocol: SSL\n  ssl_cafile: "
                         "{tmp}/topics.yaml\n", "kafka.ssl_cafile"),
    "kafka client key missing": ("newsmon.yaml", "kafka:\n  security_protocol: SSL\n"
                                 "  ssl_certfile: {tmp}/client.crt\n  ssl_keyfile: "
                                 "/nonexistent/client.key\n", "kafka.ssl_keyfile"),
    # state_dir: a run creates it and writes there
    "state_dir is a file": ("newsmon.yaml", "state_dir: {tmp}/feeds.yaml\n", "state_dir"),
    "state_dir under a file": ("newsmon.yaml", "state_dir: {tmp}/feeds.yaml/state\n",
                               "state_dir"),
    # alerts.yaml: a channel that could never deliver, a period beyond datetime's range
    "webhook url not a URL": ("alerts.yaml", channel("{type: webhook, url: 'not a url'}"),
                              "channels.x.url"),
    "slack url without scheme": ("alerts.yaml", channel("{type: slack, url: hooks.example/x}"),
                                 "channels.x.url"),
    "telegram url bad port": ("alerts.yaml", channel("{type: telegram, url: 'http://h:70000', "
                              "chat_id: '@newsdesk', secret_env: TG_TOKEN}"), "channels.x.url"),
    "telegram chat id": ("alerts.yaml", channel("{type: telegram, chat_id: 'news desk', "
                         "secret_env: TG_TOKEN}"), "channels.x.chat_id"),
    "secret_env not a variable name": ("alerts.yaml", channel(
        "{type: webhook, url: 'https://h.example/x', secret_env: 'MY TOKEN'}"),
        "channels.x.secret_env"),
    "smtp host is a URL": ("alerts.yaml", channel("{type: smtp, host: 'smtp://mail.example', "
                           "sender: a@example.org, to: [b@example.org]}"), "channels.x.host"),
    "smtp sender with a newline": ("alerts.yaml", channel(
        "{type: smtp, host: mail.example, sender: \"a@example.org\\nBcc: x@evil.example\", "
        "to: [b@example.org]}"), "channels.x.sender"),
    "smtp recipient not an address": ("alerts.yaml", channel(
        "{type: smtp, host: mail.example, sender: a@example.org, to: [desk]}"), "channels.x.to"),
    "rule throttle 10**20": ("alerts.yaml", "rules:\n  - {name: r, topic: troop_deployment, "
                             f"throttle_s: {BIG}}}\n", "rules.0.throttle_s"),
    "lease 10**20": ("alerts.yaml", f"lease_s: {BIG}\n", "lease_s"),
    "threshold inf": ("alerts.yaml", "rules:\n  - {name: r, topic: troop_deployment, "
                      "threshold: .inf}\n", "rules.0.threshold"),
    "surge interval 10**20": ("alerts.yaml", "surges:\n  - {name: s, topic: troop_deployment, "
                              f"interval_s: {BIG}}}\n", "surges.0.interval_s"),
    "surge k nan": ("alerts.yaml", "surges:\n  - {name: s, topic: troop_deployment, k: .nan}\n",
                    "surges.0.k"),
    # topics.yaml: an infinite score is no JSON a search server takes
    "topic term weight inf": ("terms/en.yaml", EN_TERMS.replace("troops: 1,", "troops: .inf,", 1),
                              "groups.TROOPS.troops"),
    "topic threshold inf": ("topics.yaml", TOPICS.replace("threshold: 1.0", "threshold: .inf",
                                                          1), "topics.troop_deployment.threshold"),
    # feeds.yaml: a source or a pass that could never work
    "feed url bad port": ("feeds.yaml", FEED.replace("127.0.0.1:9/f", "127.0.0.1:99999/f"),
                          "sources.0.rss.url"),
    "feed url bad IPv6": ("feeds.yaml", FEED.replace("127.0.0.1:9/f", "[zz::1]/f"),
                          "sources.0.rss.url"),
    "feed url bad host": ("feeds.yaml", FEED.replace("127.0.0.1:9/f", "news..example/f"),
                          "sources.0.rss.url"),
    "telegram base_url with a space": ("feeds.yaml", "sources:\n  - {id: t, type: telegram, "
                                       "channel: newsdesk, name: T, lang: en, country: GB, "
                                       "base_url: 'https://t .me'}\n",
                                       "sources.0.telegram.base_url"),
    "source interval 10**20": ("feeds.yaml", FEED.replace("country: GB", f"country: GB, "
                               f"interval_s: {BIG}"), "sources.0.rss.interval_s"),
    "seen retention 10**20": ("feeds.yaml", f"defaults: {{seen_retention_days: {BIG}}}\n" + FEED,
                              "defaults.seen_retention_days"),
    "max backoff 10**20": ("feeds.yaml", f"defaults: {{max_backoff_s: {BIG}}}\n" + FEED,
                           "defaults.max_backoff_s"),
    "user agent not ASCII": ("feeds.yaml", "defaults: {http: {user_agent: 'n\u00e9wsmon'}}\n"
                             + FEED, "defaults.http"),
    "user agent with a newline": ("feeds.yaml", "defaults: {http: {user_agent: \"a\\nX: y\"}}\n"
                                  + FEED, "defaults.http"),
    "fetch timeout inf": ("feeds.yaml", "defaults: {http: {total_timeout_s: .inf}}\n" + FEED,
                          "defaults.http"),
    "page delay inf": ("feeds.yaml", "defaults: {telegram_page_delay_s: .inf}\n" + FEED,
                       "defaults.telegram_page_delay_s"),
    "host limit for a URL": ("feeds.yaml", "defaults: {hosts: {'https://t.me': {concurrency: 1}}}"
                             "\n" + FEED, "defaults.hosts"),
}


def write_config(root: Path, case: str | None = None) -> Path:
    """A complete, valid config in ``root``, then the case's file changed."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "newsmon.yaml").write_text(f"state_dir: {root / 'state'}\n")
    (root / "feeds.yaml").write_text(FEED)
    shutil.copy(ROOT / "config" / "topics.yaml", root / "topics.yaml")
    shutil.copytree(ROOT / "config" / "terms", root / "terms", dirs_exist_ok=True)
    shutil.copy(ROOT / "config" / "alerts.yaml", root / "alerts.yaml")
    (root / "client.crt").write_text("a certificate would be here\n")
    if case is not None:
        name, text, _ = CASES[case]
        text = text.replace("{tmp}", str(root))
        target = root / name
        if name == "newsmon.yaml":
            text = target.read_text() + text
            if text.count("state_dir:") > 1:  # the case's own state_dir replaces the default
                text = text.split("\n", 1)[1]
        target.write_text(text)
    return root / "newsmon.yaml"


def one_line(output: str, origin: str, key: str) -> str:
    """The one line naming ``origin`` and ``key``; fails on a traceback or more lines."""
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in output.splitlines() if line.startswith(origin)]
    assert len(lines) == 1, output
    assert f": {key}: " in lines[0] or f": {key}." in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_config_check_refuses_what_a_run_would_crash_on(tmp_path: Path, case: str) -> None:
    config = write_config(tmp_path, case)
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    name, _, key = CASES[case]
    one_line(result.stderr, str(tmp_path / name), key)
    assert result.stdout == ""


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Self-signed certificates made by openssl: good.crt/.key and other.crt/.key without a
    passphrase, locked.crt/.key with one."""
    d = tmp_path_factory.mktemp("pem")
    for name, key_option in (("good", "-nodes"), ("other", "-nodes"),
                             ("locked", "-passout=pass:secret")):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", key_option, "-keyout",
                        f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", "/CN=c"],
                       cwd=d, check=True, capture_output=True, timeout=60)
    return d


#: Values of the same settings that are valid: the checks refuse the broken, not the unusual.
VALID = [
    "",  # the config as written by write_config
    "kafka:\n  bootstrap_servers: ' kafka-1.example:9093, [::1]:9094,10.0.0.7:9092'\n",
    "search:\n  backend: opensearch\n  url: http://search.example\n",  # opensearch-py: 9200
    "search:\n  backend: elasticsearch\n  url: 'https://[2001:db8::5]/es-proxy/'\n",
    "search:\n  url: HTTPS://Search.Example:9243\n  index_prefix: news.monitor_2\n",
    "kafka:\n  security_protocol: SSL\n  ssl_cafile: {pem}/good.crt\n",
    "kafka:\n  security_protocol: SSL\n  ssl_certfile: {pem}/good.crt\n"
    "  ssl_keyfile: {pem}/good.key\n",
    "search:\n  url: https://127.0.0.1:9200\n  ca_certs: {pem}/other.crt\n",
]


@pytest.mark.parametrize("text", VALID)
def test_unusual_but_valid_values_pass(tmp_path: Path, pem: Path, text: str) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + text.replace("{pem}", str(pem)))
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)])
    assert result.exit_code == 0, result.stderr


def test_a_state_dir_yet_to_be_made_passes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(f"state_dir: {tmp_path / 'not' / 'made' / 'yet'}\n")
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)])
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "not").exists()  # a check creates nothing


@pytest.mark.parametrize(("cert", "key"), [("locked", "locked"), ("good", "other"),
                                           ("good", "good.crt")])
def test_a_client_certificate_that_cannot_be_loaded_is_named(
        tmp_path: Path, pem: Path, cert: str, key: str) -> None:
    """A key with a passphrase (no setting can give one, and OpenSSL would ask for it on the
    terminal), the key of another certificate, a certificate given as its own key."""
    config = write_config(tmp_path)
    keyfile = pem / (key if "." in key else f"{key}.key")
    config.write_text(config.read_text() + f"kafka:\n  security_protocol: SSL\n"
                      f"  ssl_certfile: {pem / cert}.crt\n  ssl_keyfile: {keyfile}\n")
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)], input="")
    assert result.exit_code == 2
    one_line(result.stderr, str(config), "kafka.ssl_certfile")


@pytest.mark.parametrize(("env", "variable"), [
    ({"NEWSMON_SEARCH__URL": "garbage"}, "NEWSMON_SEARCH__URL"),
    ({"NEWSMON_SEARCH__URL": "http://[::1"}, "NEWSMON_SEARCH__URL"),
    ({"NEWSMON_KAFKA__BOOTSTRAP_SERVERS": "kafka.example"}, "NEWSMON_KAFKA__BOOTSTRAP_SERVERS"),
    ({"NEWSMON_KAFKA__REQUEST_TIMEOUT_MS": "10"}, "NEWSMON_KAFKA__REQUEST_TIMEOUT_MS"),
    ({"NEWSMON_SEARCH__REQUEST_TIMEOUT_S": "inf"}, "NEWSMON_SEARCH__REQUEST_TIMEOUT_S"),
    ({"NEWSMON_KAFKA__SECURITY_PROTOCOL": "SSL", "NEWSMON_KAFKA__SSL_CAFILE": "/nonexistent"},
     "NEWSMON_KAFKA__SSL_CAFILE"),
    ({"NEWSMON_STATE_DIR": "/etc/hostname"}, "NEWSMON_STATE_DIR"),
])
def test_a_bad_value_from_the_environment_names_the_variable(
        tmp_path: Path, env: dict[str, str], variable: str) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)], env=env)
    assert result.exit_code == 2, result.stderr
    key = variable.removeprefix("NEWSMON_").replace("__", ".").lower()
    one_line(result.stderr, f"environment {variable}", key)


def test_a_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    """`-c` (or `--config`) names the file: a missing one used to print "config ok" and run
    on the defaults."""
    write_config(tmp_path)
    for args in (["-c", str(tmp_path / "nowhere" / "newsmon.yaml")],
                 ["--config", str(tmp_path / "newsmon.yml")],  # a typo of the name
                 ["-c", str(tmp_path)]):  # the directory instead of the file
        result = CliRunner().invoke(app, ["config", "check", *args])
        assert result.exit_code == 2, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{args[1]}: "), lines
        assert lines[0].endswith("(named by --config)")
        assert result.stdout == ""


def test_a_missing_config_directory_from_the_environment_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config", "check"],
                                env={"NEWSMON_CONFIG_DIR": str(tmp_path / "nowhere")})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"environment NEWSMON_CONFIG_DIR: {tmp_path / 'nowhere'} is not a directory"]


#: Real processes, as a scheduler starts them: each command refuses the broken file it reads,
#: with the one line and status 2, before contacting a service (they point at closed ports).
COMMANDS = {("run",): {"newsmon.yaml", "feeds.yaml", "alerts.yaml"},
            ("poll", "--once"): {"newsmon.yaml", "feeds.yaml"},
            ("pipeline", "run"): {"newsmon.yaml", "alerts.yaml"},
            ("doctor",): {"newsmon.yaml", "feeds.yaml", "alerts.yaml"}}
THROUGH_COMMANDS = ["search.url not a URL", "kafka brokers without port", "kafka CA missing",
                    "state_dir under a file", "webhook url not a URL", "rule throttle 10**20",
                    "source interval 10**20", "user agent not ASCII"]


@pytest.mark.parametrize("case", THROUGH_COMMANDS)
def test_every_command_refuses_it_in_one_line(tmp_path: Path, case: str) -> None:
    config = write_config(tmp_path, case)
    name, _, key = CASES[case]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    if name != "newsmon.yaml":  # services that are down: a command that got that far fails
        env |= {"NEWSMON_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",
                "NEWSMON_SEARCH__BACKEND": "elasticsearch",
                "NEWSMON_SEARCH__URL": "http://127.0.0.1:9"}
    for command, reads in COMMANDS.items():
        if name not in reads:
            continue
        proc = subprocess.run([str(NEWSMON), *command, "-c", str(config)], capture_output=True,
                              text=True, timeout=120, env=env)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr[-3000:])
        output = proc.stdout if command == ("doctor",) else proc.stderr  # doctor: its table
        origin = f"FAIL config: {tmp_path / name}" if command == ("doctor",) else str(
            tmp_path / name)
        one_line(output, origin, key)


def test_doctor_shows_an_ipv6_server_as_a_url(tmp_path: Path) -> None:
    """Valid IPv6 addresses reach doctor's checks, which name them with their brackets."""
    with socket.socket(socket.AF_INET6) as sock:  # a port nothing listens on
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "kafka: {bootstrap_servers: '[::1]:9'}\n"
                      f"search: {{backend: opensearch, url: 'http://[::1]:{port}/'}}\n")
    result = CliRunner().invoke(app, ["doctor", "-c", str(config)])
    assert result.exit_code == 1, result.stdout
    assert f"FAIL search: cannot connect to opensearch at http://[::1]:{port} (" in result.stdout
    assert "FAIL kafka: cannot connect to [::1]:9 (" in result.stdout, result.stdout
