"""Every invalid config is one clear message per problem, naming the file (or the environment
variable) and the key, with exit status 2: for `newsmon config check` and for the commands that
read the broken file. Never a traceback, never a run that starts anyway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = Path(sys.executable).parent / "newsmon"

FEED = ("sources:\n  - {id: a-feed, type: rss, url: 'http://127.0.0.1:9/f', name: A, lang: en,"
        " country: GB}\n")

#: name -> (file, its broken content, the key the message must name)
BROKEN: dict[str, tuple[str, str | bytes, str]] = {
    "yaml syntax": ("newsmon.yaml", "search: [\n", "line 3, column 1"),  # after state_dir
    "not a mapping": ("newsmon.yaml", "- a\n- b\n", "(top level)"),
    "unknown key": ("newsmon.yaml", "search:\n  colour: red\n", "search.colour"),
    "wrong type": ("newsmon.yaml", "kafka:\n  request_timeout_ms: soon\n",
                   "kafka.request_timeout_ms"),
    "bad choice": ("newsmon.yaml", "search:\n  backend: solr\n", "search.backend"),
    "section not a mapping": ("newsmon.yaml", "search: 5\n", "search"),
    "secret in the file": ("newsmon.yaml", "kafka:\n  sasl_password: hunter2\n",
                           "kafka.sasl_password"),
    "not UTF-8": ("newsmon.yaml", b"search:\n  url: \xff\xfe\n", "not UTF-8"),
    "duplicate key": ("newsmon.yaml", "search:\n  url: http://a\n  url: http://b\n",
                      "duplicate key 'url'"),
    "upper-case prefix": ("newsmon.yaml", "search:\n  index_prefix: News\n",
                          "search.index_prefix"),
    "feeds: bad language": ("feeds.yaml", FEED.replace("lang: en", "lang: EN"),
                            "sources.0.rss.lang"),
    "feeds: duplicate id": ("feeds.yaml", FEED + FEED[len("sources:\n"):], "sources.1.id"),
    "feeds: unknown type": ("feeds.yaml", FEED.replace("type: rss", "type: atom"), "sources.0"),
    "feeds: interval below the floor": ("feeds.yaml", FEED.replace("country: GB",
                                        "country: GB, interval_s: 5"), "sources.0"),
    "feeds: sources not a list": ("feeds.yaml", "sources:\n  a: b\n", "sources"),
    "feeds: yaml syntax": ("feeds.yaml", "sources: {\n", "line 2"),
    "topics: unknown group": ("topics.yaml", "groups:\n  A:\n    terms: {en: [x]}\ntopics:\n"
                              "  t:\n    rules:\n      - {id: r, anchor: B}\n",
                              "topics.t.rules.0.anchor"),
    "topics: bad distance": ("topics.yaml", "groups:\n  A:\n    terms: {en: [x]}\ntopics:\n"
                             "  t:\n    rules:\n      - {id: r, anchor: A, near: 'far'}\n",
                             "topics.t.rules.0.near"),
    "topics: duplicate group": ("topics.yaml", "groups:\n  A:\n    terms: {en: [x]}\n  A:\n"
                                "    terms: {en: [y]}\ntopics: {}\n", "duplicate key 'A'"),
    "alerts: unknown channel": ("alerts.yaml", "rules:\n  - {name: r, topic: troop_deployment,"
                                " channels: [mail]}\n", "rules.0.channels"),
    "alerts: incomplete channel": ("alerts.yaml", "channels:\n  mail: {type: smtp}\n",
                                   "channels.mail"),
    "terms: unknown group": ("terms/de.yaml", "groups:\n  NO_SUCH_GROUP: [x]\n",
                             "groups.NO_SUCH_GROUP"),
    "terms: bad term": ("terms/fr.yaml", "groups:\n  TROOPS: [troupes, 'a*b']\n",
                        "groups.TROOPS"),
    "alerts: negative threshold": ("alerts.yaml", "rules:\n  - {name: r, topic: "
                                   "troop_deployment, threshold: -1}\n", "rules.0.threshold"),
    "alerts: duplicate rule name": ("alerts.yaml", "rules:\n  - {name: r, topic: "
                                    "troop_deployment}\n  - {name: r, topic: "
                                    "long_range_strike}\n", "rules.1.name"),
    "alerts: unknown topic": ("alerts.yaml", "rules:\n  - {name: r, topic: no_such_topic}\n",
                              "rules.0.topic"),
}


def config_dir(root: Path, broken: str | None = None) -> Path:
    """A complete, valid config in ``root`` (rules and alerts as shipped), then one file
    replaced by the broken case."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "newsmon.yaml").write_text(f"state_dir: {root / 'state'}\n")
    (root / "feeds.yaml").write_text(FEED)
    shutil.copy(ROOT / "config" / "topics.yaml", root / "topics.yaml")
    shutil.copytree(ROOT / "config" / "terms", root / "terms")
    shutil.copy(ROOT / "config" / "alerts.yaml", root / "alerts.yaml")
    if broken is not None:
        name, content, _ = BROKEN[broken]
        if name == "newsmon.yaml" and isinstance(content, str) and not content.startswith("-"):
            content = (root / "newsmon.yaml").read_text() + content
        target = root / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return root / "newsmon.yaml"


def check_message(stderr: str, config: Path, case: str) -> None:
    name, _, key = BROKEN[case]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no message"
    assert "Traceback" not in stderr
    problem_lines = [line for line in lines if line.startswith(str(config.parent / name))]
    assert len(problem_lines) == 1, lines  # one problem, one line
    assert key in problem_lines[0], problem_lines[0]


pytestmark = pytest.mark.usefixtures("no_newsmon_environment")


def test_the_valid_config_passes(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config_dir(tmp_path))])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("case", list(BROKEN))
def test_config_check_names_the_file_and_the_key(tmp_path: Path, case: str) -> None:
    config = config_dir(tmp_path, case)
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    check_message(result.stderr, config, case)
    assert result.stdout == ""  # no settings dump of a config that is not valid


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    config = config_dir(tmp_path)
    env = {"NEWSMON_SEARCH__BULK_BATCH_SIZE": "-5", "NEWSMON_KAFKA__SECURITY_PROTOCOL": "TLS"}
    result = CliRunner().invoke(app, ["config", "check", "-c", str(config)], env=env)
    assert result.exit_code == 2
    assert sorted(result.stderr.splitlines()) == [
        "environment NEWSMON_KAFKA__SECURITY_PROTOCOL: kafka.security_protocol: Input should be"
        " 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'",
        "environment NEWSMON_SEARCH__BULK_BATCH_SIZE: search.bulk_batch_size: Input should be"
        " greater than 0",
    ]


#: The commands, and the files each one reads (and so must refuse when broken).
COMMANDS = {
    ("poll", "--once"): {"newsmon.yaml", "feeds.yaml"},
    ("pipeline", "run"): {"newsmon.yaml", "topics.yaml", "alerts.yaml"},
    ("run",): {"newsmon.yaml", "feeds.yaml", "topics.yaml", "alerts.yaml"},
    ("search", "setup"): {"newsmon.yaml"},
    ("sources",): {"newsmon.yaml", "feeds.yaml"},
    ("doctor",): {"newsmon.yaml", "feeds.yaml", "topics.yaml", "alerts.yaml"},
}
ONE_PER_FILE = ["unknown key", "feeds: bad language", "topics: unknown group",
                "alerts: unknown topic", "not UTF-8", "duplicate key"]


@pytest.mark.timeout(300)
def test_every_command_refuses_a_broken_file_it_reads(tmp_path: Path) -> None:
    """Real processes, as an operator runs them: exit 2 and the message, before any service
    is contacted (Kafka and the search server point at a closed port here)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "NEWSMON_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",
           "NEWSMON_SEARCH__BACKEND": "elasticsearch", "NEWSMON_SEARCH__URL": "http://127.0.0.1:9"}
    ran = 0
    for case in ONE_PER_FILE:
        name = BROKEN[case][0]
        config = config_dir(tmp_path / case.replace(" ", "-").replace(":", ""), case)
        for command, reads in COMMANDS.items():
            if name not in reads or (command == ("doctor",) and case == "alerts: unknown topic"):
                continue  # doctor checks each file on its own
            proc = subprocess.run([str(NEWSMON), *command, "-c", str(config)],
                                  capture_output=True, text=True, timeout=120, env=env)
            assert proc.returncode == 2, (case, command, proc.stdout, proc.stderr[-2000:])
            if command != ("doctor",):  # doctor prints its table of checks to stdout
                check_message(proc.stderr, config, case)
            else:
                assert BROKEN[case][2] in proc.stdout + proc.stderr
            ran += 1
    assert ran >= 15


@pytest.mark.parametrize("case", [c for c, (name, _, _) in BROKEN.items()
                                  if name != "newsmon.yaml"])
def test_config_check_doctor_and_run_refuse_the_same_lines(tmp_path: Path, case: str) -> None:
    """The three read the configuration through one loader (newsmon.ops.loading.load_all):
    they used to assemble it three times, with different checks."""
    config = config_dir(tmp_path, case)
    runner = CliRunner()
    checked = runner.invoke(app, ["config", "check", "-c", str(config)])
    ran = runner.invoke(app, ["run", "-c", str(config)])
    doctor = runner.invoke(app, ["doctor", "-c", str(config)])
    assert (checked.exit_code, ran.exit_code, doctor.exit_code) == (2, 2, 2)
    expected = checked.stderr.splitlines()
    assert expected and ran.stderr.splitlines() == expected
    assert [line.removeprefix("FAIL config: ") for line in doctor.stdout.splitlines()
            if line.startswith("FAIL config: ")] == expected
