"""ADAPTER, to be deleted at the merge of issue 13 (helper LAY-A's branch).

Doctor codes against the channel registry of ``newsmon.pipeline.alerts.channels`` (written in
helper LAY-B's branch): ``channel_type(name).check(config, timeout) -> (ok, message)``, each
channel module owning its own reachability check. Until that package is merged, this module
offers the same API with the checks doctor used to have inline, so doctor itself already has
no per-type branches. At the merge: replace the import in ops/doctor.py by
``from newsmon.pipeline.alerts.channels import channel_type`` and delete this file.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from newsmon.pipeline.alerts.config import ChannelConfig
from newsmon.urls import redacted_url

TELEGRAM_API = "https://api.telegram.org"  # the default Bot API server
#: SMTP ports by TLS mode when the channel names none.
SMTP_PORTS = {"ssl": 465, "starttls": 587}

Check = Callable[[ChannelConfig, float], tuple[bool, str]]


@dataclass(frozen=True)
class ChannelType:
    """The part of the registry's ChannelType doctor uses."""

    name: str
    check: Check


def tcp_problem(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection to host:port opens within the timeout, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:.0f}s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _unreachable(kind: str, target: str, error: str, field: str) -> tuple[bool, str]:
    # Worded as the registry's channels/base.py reachability() words it.
    return False, (f"{kind} endpoint {target} is not reachable ({error}) -> check the "
                   f"channel's {field} in alerts.yaml and the network (alerts to it stay "
                   "pending and are retried)")


def _check_url(kind: str, default: str | None = None) -> Check:
    def check(channel: ChannelConfig, timeout: float) -> tuple[bool, str]:
        url = channel.url or default or ""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = redacted_url(url)
        error = tcp_problem(parts.hostname or "", port, timeout)
        if error is not None:
            return _unreachable(kind, target, error, "url")
        return True, f"{kind} endpoint {target} is reachable"
    return check


def _check_console(channel: ChannelConfig, timeout: float) -> tuple[bool, str]:
    return True, "console (standard output)"


def _check_smtp(channel: ChannelConfig, timeout: float) -> tuple[bool, str]:
    tls = getattr(channel, "tls", "starttls")
    host = getattr(channel, "host", None) or ""
    port = getattr(channel, "port", None) or SMTP_PORTS.get(tls, 25)
    target = f"smtp://{host}:{port}"
    error = tcp_problem(host, port, timeout)
    if error is not None:
        return _unreachable("smtp", target, error, "host and port")
    if tls != "ssl":  # with implicit TLS the greeting is encrypted
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                greeting = sock.recv(512).decode("ascii", "replace").strip()
        except OSError as exc:
            greeting = f"({exc.strerror or type(exc).__name__})"
        if not greeting.startswith("220"):
            return False, (f"{target} accepts connections but is not ready to take mail "
                           f"(greeting {greeting[:60]!r}) -> check the mail server")
    return True, f"smtp endpoint {target} is reachable"


CHANNELS: dict[str, ChannelType] = {
    "console": ChannelType("console", _check_console),
    "webhook": ChannelType("webhook", _check_url("webhook")),
    "slack": ChannelType("slack", _check_url("slack")),
    "telegram": ChannelType("telegram", _check_url("telegram", TELEGRAM_API)),
    "smtp": ChannelType("smtp", _check_smtp),
}


def channel_type(name: str) -> ChannelType:
    return CHANNELS[name]
