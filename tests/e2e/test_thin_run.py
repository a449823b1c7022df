"""The foundation's end-to-end run: a local feed -> `newsmon poll --once` -> real Kafka ->
`newsmon pipeline run` (Beam on FnApiRunner) -> a real search server, twice.

Runs the installed `newsmon` command in subprocesses, as an operator's cron job would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from newsmon.config import KafkaSettings, SearchSettings
from tests.e2e.configs import write_config
from tests.localhttp import Response, serve

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Test feed</title><link>https://t.example/</link>
<description>thin run</description>
<item><title>Briten und Franzosen erwägen Truppen für die Ukraine</title>
<link>https://t.example/de/truppen</link><guid>t-1</guid>
<pubDate>{d0}</pubDate>
<description>Großbritannien und Frankreich beraten über die Entsendung von Bodentruppen in die
Ukraine. Eine europäische Friedenstruppe soll nach einem Waffenstillstand im Land
stationiert werden, berichten Diplomaten in Paris und London.</description></item>
<item><title>Ukraine strikes Russian airbase with ATACMS missiles</title>
<link>https://t.example/en/atacms</link><guid>t-2</guid>
<pubDate>{d1}</pubDate>
<description>Ukrainian forces fired US-supplied ATACMS missiles at an airbase inside Russia's
Belgorod region, the first such strike on Russian territory since Washington lifted its
restrictions on the long-range weapons.</description></item>
<item><title>City council approves new tram line</title>
<link>https://t.example/en/tram</link><guid>t-3</guid>
<pubDate>{d2}</pubDate>
<description>The council voted to build a new tram line to the airport, with construction to
start next spring and the first trams running in 2029.</description></item>
<item><title>Wetter: Sturm und Regen an der Küste</title>
<link>https://t.example/de/wetter</link><guid>t-4</guid>
<pubDate>{d3}</pubDate>
<description>Der Deutsche Wetterdienst warnt vor Sturmböen und Starkregen an der Nordsee.
Am Wochenende wird es deutlich kälter.</description></item>
</channel></rss>
"""
# Published in the last hours: items older than the alert rules' maximum age (48 h) do not
# alert, and this run is about the alerts too.
FEED = FEED.format(**{f"d{i}": format_datetime(datetime.now(UTC) - timedelta(hours=4 - i))
                      for i in range(4)}).encode()


def _newsmon(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    proc = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "--verbose", *args, "--config",
         str(config)],
        capture_output=True, text=True, timeout=300, env=env, check=False, cwd=config.parent,
    )
    assert proc.returncode == 0, f"newsmon {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _hits(search: SearchSettings, kind: str) -> list[dict[str, object]]:
    index = f"{search.index_prefix}-{kind}"
    httpx.post(f"{search.url}/{index}/_refresh", timeout=30)
    resp = httpx.post(f"{search.url}/{index}/_search", json={"size": 100}, timeout=30)
    resp.raise_for_status()
    return [h["_source"] for h in resp.json()["hits"]["hits"]]


@pytest.mark.integration
def test_feed_to_kafka_to_search_server_twice_without_duplicates(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings
) -> None:
    feed = Response(FEED, headers={"Content-Type": "application/rss+xml"})
    with serve({"/feed.xml": feed}) as srv:
        config = write_config(tmp_path, kafka_settings, search_settings, {"sources": [{
            "id": "thin-run-feed", "type": "rss", "url": srv.url("/feed.xml"),
            "name": "Thin run", "lang": "en", "country": "GB"}]})
        _newsmon(config, "search", "setup")
        polled = _newsmon(config, "poll", "--once")
        assert "4 new" in polled.stdout
        _newsmon(config, "pipeline", "run")

        articles = {a["url"]: a for a in _hits(search_settings, "articles")}
        assert len(articles) == 4
        topics = {url.rsplit("/", 1)[1]: a["topic_names"] for url, a in articles.items()}
        assert "troop_deployment" in topics["truppen"]
        assert "long_range_strike" in topics["atacms"]
        assert topics["tram"] == [] and topics["wetter"] == []
        alerts = _hits(search_settings, "alerts")
        assert sorted(a["topic"] for a in alerts) == ["long_range_strike", "troop_deployment"]

        # The whole thing again: the poller sees nothing new; a re-run of the pipeline from
        # the start of the topic (a fresh group) rewrites the same ids.
        _newsmon(config, "poll", "--once", "--force")
        _newsmon(config, "pipeline", "run")
        config.write_text(config.read_text().replace(kafka_settings.group_id,
                                                      kafka_settings.group_id + "-again"))
        second = _newsmon(config, "pipeline", "run")
        assert "processed 4 records" in second.stdout
        assert len(_hits(search_settings, "articles")) == 4
        assert len(_hits(search_settings, "alerts")) == 2
