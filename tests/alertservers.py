"""Real local receivers for alert channels: an SMTP server (aiosmtpd) and HTTP routes that
record what they were sent (webhook, Slack, the Telegram Bot API), and a webhook receiver that
holds newsmon to its contract (signature, schema). Loopback only."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jsonschema
from aiosmtpd.controller import Controller

from tests.localhttp import Response


@dataclass
class SmtpInbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    #: Reply codes to give to the next DATA commands, first first (then 250).
    fail_with: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    # aiosmtpd looks the hook up by this exact name.
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.inbox.fail_with:
            return self.inbox.fail_with.pop(0)
        self.inbox.messages.append(message_from_bytes(envelope.content))
        self.inbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[SmtpInbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts."""
    inbox = SmtpInbox("127.0.0.1", _free_port())
    controller = Controller(_Handler(inbox), hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Recorder:
    """An HTTP route that records JSON bodies and answers from a script of statuses."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, handler: BaseHTTPRequestHandler) -> Response:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
            self.paths.append(handler.path)
            if status < 300:
                self.bodies.append(body)
        answer = {"ok": status < 300, "result": {"message_id": len(self.bodies)}}
        return Response(json.dumps(answer).encode(), status,
                        {"Content-Type": "application/json"})


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


WEBHOOK_SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schema" / "webhook-v1.json"


@cache
def webhook_validator() -> jsonschema.Draft202012Validator:
    """The published schema (docs/schema/webhook-v1.json), date-times checked too."""
    schema = json.loads(WEBHOOK_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@dataclass
class SignedReceiver:
    """A webhook receiver as docs/alerts.md tells receivers to write one: it verifies the
    HMAC-SHA256 signature with its own copy of the secret (401 otherwise), validates the body
    against the published schema (400 with the first error otherwise), then answers from a
    script of (status, headers) before accepting with 200. Every request is kept, with its
    verdict, in ``requests``; accepted payloads in ``accepted``."""

    secret: str
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], dict[str, Any], str]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verdict(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        timestamp = headers.get("X-Newsmon-Timestamp", "")
        expected = "v1=" + hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body,
                                    hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Newsmon-Signature", "")):
            return 401, "bad signature"
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, "not JSON"
        error = next(iter(webhook_validator().iter_errors(payload)), None)
        if error is not None:
            return 400, f"schema: {error.message} at {list(error.absolute_path)}"
        if headers.get("X-Newsmon-Delivery") != payload.get("delivery_id") or headers.get(
                "X-Newsmon-Event") != payload.get("event"):
            return 400, "headers disagree with the payload"
        return 200, "ok"

    def __call__(self, handler: BaseHTTPRequestHandler) -> Response:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        headers = dict(handler.headers)
        status, reason = self.verdict(headers, body)
        extra: dict[str, str] = {}
        with self.lock:
            if status == 200 and self.script:
                status, extra = self.script.pop(0)
                reason = f"scripted {status}"
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
            self.requests.append((headers, payload, reason))
            if status == 200:
                self.accepted.append(payload)
        return Response(json.dumps({"status": status, "reason": reason}).encode(), status,
                        {"Content-Type": "application/json", **extra})
