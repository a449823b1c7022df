"""What a scheduler sees (issue 12, defect 8): the status line and the exit status agree.

``newsmon run`` printed ``status: FAILED`` and exited 0. Now (README, "Exit codes"):
0 every source polled and every item processed; 3 the run went through and every item
fetched was handled, but some sources failed (``newsmon sources``); 1 the run failed (a
service down, items not published): safe to re-run; 2 config; 75 already running.
Real processes against real local servers: feeds on 127.0.0.1, the shared Kafka.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsmon import cli
from newsmon.runlock import EXIT_LOCKED
from tests.localhttp import LocalServer, Response, serve

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = Path(sys.executable).parent / "newsmon"
FEED = (ROOT / "config" / "demo" / "feeds" / "world-wire.xml").read_bytes()

pytestmark = [pytest.mark.timeout(600), pytest.mark.usefixtures("no_newsmon_environment")]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def feeds() -> Iterator[LocalServer]:
    """A good feed, and sources that fail each in their own way."""
    with serve({
        "/good.xml": Response(FEED, headers={"Content-Type": "application/rss+xml"}),
        "/gone.xml": Response(b"not here", 404),
        "/broken.xml": Response(b"upstream exploded", 500),
        "/page.html": Response(b"<html><body><p>Not a feed at all.</p></body></html>",
                               headers={"Content-Type": "text/html"}),
    }) as server:
        yield server


def source(sid: str, url: str) -> str:
    return f"  - {{id: {sid}, type: rss, url: '{url}', name: {sid}, lang: en, country: GB}}\n"


def write_config(tmp: Path, urls: dict[str, str], extra: str = "") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "feeds.yaml").write_text("sources:\n" + "".join(source(k, v)
                                                             for k, v in urls.items()))
    config = tmp / "newsmon.yaml"
    config.write_text(f"state_dir: {tmp / 'state'}\n"
                      f"topics: {ROOT / 'config' / 'topics.yaml'}\n"
                      f"alerts: {ROOT / 'config' / 'alerts.yaml'}\n" + extra)
    return config


def newsmon(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(config.parent)}
    return subprocess.run([str(NEWSMON), *args, "-c", str(config)], capture_output=True,
                          text=True, timeout=300, env=env)


def status_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if line.startswith("status:")]


def failing(server: LocalServer) -> dict[str, str]:
    return {"refused": f"http://127.0.0.1:{closed_port()}/feed.xml",
            "gone": server.url("/gone.xml"), "broken": server.url("/broken.xml"),
            "not-a-feed": server.url("/page.html")}


def test_run_with_every_source_polled_exits_0(tmp_path: Path, feeds: LocalServer) -> None:
    config = write_config(tmp_path, {"good": feeds.url("/good.xml")},
                          "search: {backend: embedded}\n")
    proc = newsmon("run", config=config)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert status_lines(proc) == ["status: OK"]


@pytest.mark.parametrize("trigger", ["refused", "gone", "broken", "not-a-feed"])
def test_run_with_a_failed_source_exits_3_and_says_so(tmp_path: Path, feeds: LocalServer,
                                                      trigger: str) -> None:
    """The good feed's items are all processed; the failed source is named and is the only
    thing to look at: exit 3, not 0 (nothing to see) and not 1 (nothing to re-run)."""
    config = write_config(tmp_path, {"good": feeds.url("/good.xml"),
                                     trigger: failing(feeds)[trigger]},
                          "search: {backend: embedded}\n")
    proc = newsmon("run", config=config)
    assert proc.returncode == cli.EXIT_SOURCES_FAILED == 3, proc.stdout + proc.stderr[-3000:]
    assert status_lines(proc) == [
        "status: SOURCES FAILED (exit 3): 1 of 2 sources failed or are disabled; every item "
        "fetched was handled (see `newsmon sources`)"]
    assert re.search(rf"^  error +{trigger}: ", proc.stdout, re.MULTILINE), proc.stdout
    processed = re.search(r"^processed (\d+) new items; .* holds (\d+) articles", proc.stdout,
                          re.MULTILINE)
    assert processed and int(processed[1]) > 0 and int(processed[2]) > 0, proc.stdout


def test_poll_once_exits_3_with_failed_sources_and_1_without_kafka(
        tmp_path: Path, feeds: LocalServer, kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:8]
    urls = {"good": feeds.url("/good.xml"), **failing(feeds)}
    kafka = (f"kafka: {{bootstrap_servers: '{kafka_bootstrap}', raw_topic: exit-{tag}, "
             f"group_id: exit-{tag}}}\n")
    up = newsmon("poll", "--once", config=write_config(tmp_path / "up", urls, kafka))
    assert up.returncode == 3, up.stdout + up.stderr[-3000:]
    assert status_lines(up) == [
        "status: SOURCES FAILED (exit 3): 4 of 5 sources failed or are disabled; every item "
        "fetched was handled (see `newsmon sources`)"]
    assert "status: FAILED" not in up.stdout  # the poll report's own line is not repeated

    down_kafka = (f"kafka: {{bootstrap_servers: '127.0.0.1:{closed_port()}', "
                  "request_timeout_ms: 2000}\n")
    down = newsmon("poll", "--once", config=write_config(tmp_path / "down",
                                                         {"good": feeds.url("/good.xml")},
                                                         down_kafka))
    assert down.returncode == 1, down.stdout + down.stderr[-3000:]
    assert status_lines(down) == [
        "status: FAILED (exit 1): the items of 1 sources were not published; the next run "
        "fetches them again"]


@pytest.mark.parametrize("command", [("run",), ("pipeline", "run")])
def test_a_service_down_fails_the_run_in_one_line(tmp_path: Path, feeds: LocalServer,
                                                  command: tuple[str, ...]) -> None:
    """`run` printed an 81-line traceback when Kafka was down; now one line, exit 1."""
    config = write_config(tmp_path, {"good": feeds.url("/good.xml")},
                          f"kafka: {{bootstrap_servers: '127.0.0.1:{closed_port()}', "
                          "request_timeout_ms: 2000}\n"
                          f"search: {{backend: elasticsearch, url: 'http://127.0.0.1:"
                          f"{closed_port()}'}}\n")
    proc = newsmon(*command, config=config)
    assert proc.returncode == cli.EXIT_FAILED == 1, proc.stdout + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("run failed, offsets not committed (safe to re-run): kafka at "), last


def test_the_readme_documents_every_exit_status() -> None:
    """The README's table is what schedulers are configured from: it names each status the
    command uses, and no other."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| `?(\d+)`? \|", section, re.MULTILINE)}
    assert documented == {0, cli.EXIT_FAILED, cli.EXIT_CONFIG, cli.EXIT_SOURCES_FAILED,
                          cli.EXIT_ALL_SOURCES_FAILED, EXIT_LOCKED}
