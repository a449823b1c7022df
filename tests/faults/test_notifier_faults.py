"""A notifier endpoint that answers 500, or hangs: the pipeline goes on (every article
indexed, the run succeeds), the failed deliveries are recorded on the alerts and retried by
the next sweep, and each alert reaches the endpoint once it works again."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from newsmon.models import RawItem, SourceRef
from tests.faults.conftest import FaultServices
from tests.faults.helpers import exactly_once, make_items, record, setup
from tests.localhttp import Response, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

STORIES = [
    ("ATACMS strike on Kursk airfield",
     "Ukrainian forces struck a military airfield in Russia's Kursk region with US-made ATACMS "
     "missiles overnight, days after Washington allowed strikes on Russian territory."),
    ("Storm Shadow missiles hit Crimea port",
     "British-supplied Storm Shadow cruise missiles hit a naval port in occupied Crimea, the "
     "Ukrainian air force said, as London confirmed the long-range weapons were used."),
    ("France and Britain weigh troops for Ukraine",
     "France and Britain are discussing sending troops to Ukraine as part of a reassurance "
     "force after a ceasefire, diplomats said; Germany ruled out ground troops."),
]


@dataclass
class Endpoint:
    """A webhook receiver that fails as told until ``healthy``: "http-500" answers 500 at once,
    "hang" holds each request 5 s (the channel gives up after 1 s) and then answers 504. What
    arrived while failing never counts as delivered, however late it is answered."""

    failure: str
    healthy: bool = False
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def __call__(self, handler: BaseHTTPRequestHandler) -> Response:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        self.paths.append(handler.path)
        if self.healthy:
            self.bodies.append(body)
            return Response(b'{"ok": true}', 200, {"Content-Type": "application/json"})
        if self.failure == "hang":
            time.sleep(5)
            return Response(b"gateway timeout", 504)
        return Response(b"internal error", 500)


def story_items() -> list[RawItem]:
    now = datetime.now(UTC) - timedelta(minutes=2)
    source = SourceRef(id="wire-n", type="rss", name="Wire N", lang="en", country="GB")
    return [RawItem.make(source=source, guid=f"story-{i}-{time.time_ns()}",
                         url=f"https://wire-n.example/{i}/{time.time_ns()}", title=title,
                         summary=text, published_at=now, first_seen_at=now)
            for i, (title, text) in enumerate(STORIES)]


@pytest.mark.parametrize("failure", ["http-500", "hang"])
def test_a_failing_notifier_does_not_stop_the_pipeline(faults: FaultServices, tmp_path: Path,
                                                       failure: str) -> None:
    hook = Endpoint(failure)
    with serve({"/hook": hook}) as receiver:
        alerts = (
            "retry_after_s: 2\n"  # a failed delivery is retried by a sweep 2 s later or after
            "channels:\n"
            f"  hook: {{type: webhook, url: '{receiver.url('/hook')}', timeout_s: 1, "
            "attempts: 2}\n"
            "rules:\n"
            "  - {name: strikes, topic: long_range_strike, channels: [hook]}\n"
            "  - {name: troops, topic: troop_deployment, channels: [hook]}\n")
        env = setup(tmp_path, faults.kafka, faults.elasticsearch, alerts=alerts)
        items = story_items() + make_items(300, f"notify-{failure}")
        env.publish(items)

        started = time.monotonic()
        run = env.newsmon("pipeline", "run")
        run_s = time.monotonic() - started
        assert run.returncode == 0, run.stderr[-3000:]
        lost, duplicated = exactly_once(env.indexed_item_ids(), items)
        assert (lost, duplicated) == (0, 0)
        owed = [a for a in env.docs("alerts") if a.get("kind", "story") == "story"]
        assert len(owed) == len(STORIES)
        # Every alert still owes the channel; the failure is recorded on the alerts that met
        # it, the others were not even tried (the channel's circuit, per worker, opened): a
        # dead endpoint costs the run a bounded number of attempts.
        states = [(a["rule"], a["pending"], a["failed"], a["notified"]) for a in owed]
        assert all(alert["pending"] == ["hook"] for alert in owed), states
        failed = [a for a in owed if "hook" in a["failed"]]
        assert failed, owed
        for alert in failed:
            assert any(d["channel"] == "hook" and d["status"] == "failed" and d.get("error")
                       for d in alert["deliveries"]), alert["deliveries"]
        attempts_during_run = len(hook.paths)
        assert 1 <= attempts_during_run <= 2 * len(STORIES)

        # The endpoint recovers; the next sweep delivers every alert, once.
        hook.healthy = True
        time.sleep(2.5)  # retry_after_s
        sweep = env.newsmon("alerts", "deliver")
        assert sweep.returncode == 0, sweep.stdout + sweep.stderr[-2000:]
        delivered = [a for a in env.docs("alerts") if a.get("kind", "story") == "story"]
        after = [(a["rule"], a["pending"], a["notified"]) for a in delivered]
        assert all(a["pending"] == [] and a["notified"] == ["hook"] for a in delivered), (
            after, sweep.stdout, sweep.stderr[-1500:])
        titles = sorted(str(body.get("title", body.get("text", ""))) for body in hook.bodies)
        assert len(hook.bodies) == len(STORIES), titles
        assert env.newsmon("alerts", "deliver").returncode == 0
        assert len(hook.bodies) == len(STORIES)  # nothing is sent twice
    record(f"notifier endpoint {failure}", items=len(items), runs=3, faults=1, lost=lost,
           duplicated=duplicated, run_s=round(run_s, 1), alerts=len(STORIES),
           attempts_during_run=attempts_during_run, delivered_after=len(hook.bodies))
