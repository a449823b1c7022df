"""A WebSub hub on 127.0.0.1 for tests, following the hub requirements of the W3C WebSub
Recommendation (no hub on the registries reachable here installs without a task queue: the
Flask one needs Celery). What it does, by section of the spec:

- 5.1 / 5.2: takes ``hub.mode`` (subscribe, unsubscribe), ``hub.callback``, ``hub.topic``,
  ``hub.lease_seconds``, ``hub.secret`` as a form POST; a bad request (no callback or topic,
  a secret over 200 bytes, an unknown mode) is a 400, a good one a 202 and then, in another
  thread, verified (or denied, ``deny``);
- 5.3: verification of intent: a GET to the callback with ``hub.mode``, ``hub.topic``,
  ``hub.challenge`` and, for a subscribe, ``hub.lease_seconds`` (the request's, capped at
  ``max_lease_s``); the subscription holds only when the answer is a 2xx echoing the challenge;
- 6 / 7: :meth:`Hub.publish` sends the content to every subscription of the topic whose lease
  is not over, with ``Link: rel=hub, rel=self`` and, when the subscriber gave a secret,
  ``X-Hub-Signature: <algorithm>=<HMAC of the body>``.

``confirm=False`` makes a hub that accepts requests and never verifies them (a subscriber must
then keep polling); ``signing_secret`` replaces the subscription's secret when signing (a
forged push).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlencode

import httpx

from tests.localhttp import Response, serve


@dataclass
class HubSubscription:
    callback: str
    topic: str
    secret: str | None
    lease_s: int
    expires_at: float


@dataclass
class Verification:
    mode: str
    topic: str
    callback: str
    status: int
    confirmed: bool


@dataclass
class Hub:
    port: int = 0
    confirm: bool = True
    deny: bool = False
    max_lease_s: int = 864000
    algorithm: str = "sha256"
    signing_secret: str | None = None
    subscriptions: dict[tuple[str, str], HubSubscription] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub"

    def active(self, topic: str) -> list[HubSubscription]:
        now = time.time()
        with self.lock:
            return [s for s in self.subscriptions.values() if s.topic == topic
                    and s.expires_at > now]

    def wait_for(self, mode: str, count: int = 1, timeout_s: float = 10.0) -> None:
        """Until ``count`` verifications of ``mode`` were attempted."""
        deadline = time.monotonic() + timeout_s
        while sum(v.mode == mode for v in self.verifications) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {mode} verification: {self.verifications}")
            time.sleep(0.02)

    def publish(self, topic: str, body: bytes,
                content_type: str = "application/rss+xml") -> list[int]:
        """Content distribution to every live subscription of ``topic``; their statuses."""
        statuses = []
        for sub in self.active(topic):
            headers = {"Content-Type": content_type,
                       "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"'}
            secret = self.signing_secret or sub.secret
            if secret:
                digest = hmac.new(secret.encode(), body, getattr(hashlib, self.algorithm))
                headers["X-Hub-Signature"] = f"{self.algorithm}={digest.hexdigest()}"
            statuses.append(httpx.post(sub.callback, content=body, headers=headers,
                                       timeout=30).status_code)
        return statuses

    # --- the hub's endpoint -------------------------------------------------------------

    def handle(self, form: dict[str, str]) -> int:
        with self.lock:
            self.requests.append(form)
        mode, callback, topic = (form.get(k, "") for k in ("hub.mode", "hub.callback",
                                                            "hub.topic"))
        secret = form.get("hub.secret")
        if mode not in ("subscribe", "unsubscribe") or not callback.startswith("http") \
                or not topic:
            return 400
        if secret is not None and len(secret.encode()) >= 200:
            return 400
        lease = min(int(form.get("hub.lease_seconds") or self.max_lease_s), self.max_lease_s)
        if self.confirm:
            threading.Thread(target=self._verify, args=(mode, callback, topic, secret, lease),
                             daemon=True).start()
        return 202

    def _verify(self, mode: str, callback: str, topic: str, secret: str | None,
                lease: int) -> None:
        if self.deny and mode == "subscribe":
            params = {"hub.mode": "denied", "hub.topic": topic, "hub.reason": "not today"}
            httpx.get(_with_query(callback, params), timeout=10)
            return
        challenge = secrets.token_urlsafe(16)
        params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            params["hub.lease_seconds"] = str(lease)
        response = httpx.get(_with_query(callback, params), timeout=10)
        confirmed = 200 <= response.status_code < 300 and response.text == challenge
        with self.lock:
            if confirmed and mode == "subscribe":
                self.subscriptions[(callback, topic)] = HubSubscription(
                    callback, topic, secret, lease, time.time() + lease)
            elif confirmed:
                self.subscriptions.pop((callback, topic), None)
            self.verifications.append(Verification(mode, topic, callback,
                                                   response.status_code, confirmed))


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


@contextmanager
def serve_hub(**options: object) -> Iterator[Hub]:
    """A hub on 127.0.0.1 (a free port) for the block; ``options`` are :class:`Hub` fields."""
    hub = Hub(**options)  # type: ignore[arg-type]

    def endpoint(handler: BaseHTTPRequestHandler) -> Response:
        length = int(handler.headers.get("Content-Length") or 0)
        return Response(status=hub.handle(dict(parse_qsl(handler.rfile.read(length).decode()))))

    with serve({"/hub": endpoint}) as local:
        hub.port = local.port
        yield hub
