"""What a single setting's value must be to be usable: what the client that takes it accepts
(host names, ports, URLs, ``host:port``), and for settings that name files, whether a run
could open them. Each function says why a value is not usable, or None when it is; the config
models of both halves call them from their validators.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_PORT = re.compile(r"^[0-9]{1,5}$")  # ASCII digits only: int() also takes "٣"
#: Control characters: never part of a name, an address or a header.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a host name (ASCII, punycode for others), an IPv4 address or an
    IPv6 address without brackets; None when it is one."""
    if not host:
        return "no host"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is allowed
        return None
    except ValueError:
        pass
    if ":" in host:
        return f"{host!r} is neither a host name nor an IPv6 address"
    if len(host) > 253 or not _HOST_NAME.match(host):
        return f"{host!r} is not a host name (letters, digits, '-', '.'; punycode for others)"
    if host.rstrip(".").rsplit(".", 1)[-1].isdigit():
        return f"{host!r} is not an IPv4 address"
    return None


def port_problem(port: str) -> str | None:
    if not _PORT.match(port) or not 1 <= int(port) <= 65535:
        return f"port {port!r} is not a number from 1 to 65535"
    return None


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a valid host and port; None if it is."""
    if not url or CONTROL.search(url) or any(c.isspace() for c in url):
        return "must be an http:// or https:// URL, without spaces"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed or invalid IPv6 bracket, a port that is no number
        return f"not a valid URL: {exc}"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// URL with a host, like https://example.org"
    problem = host_problem(parts.hostname or "")
    if problem:
        return problem
    if port == 0:
        return "port 0 is not a port (1 to 65535)"
    return None


def host_port_problem(address: str) -> str | None:
    """Why ``address`` is not ``host:port`` (``[v6 address]:port`` for IPv6); None if it is."""
    if address.startswith("["):
        inner, bracket, rest = address[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return f"{address!r} is not [IPv6 address]:port"
        host, port = inner, rest[1:]
        if ":" not in host:
            return f"{address!r}: brackets are only for IPv6 addresses"
    else:
        host, colon, port = address.rpartition(":")
        if not colon:
            return f"{address!r} has no port (host:port, like 127.0.0.1:9092)"
        if ":" in host:
            return f"{address!r}: an IPv6 address needs brackets, like [::1]:9092"
    return host_problem(host) or port_problem(port)


def checked(problem: str | None, value: str) -> str:
    if problem:
        raise ValueError(problem)
    return value


def matching(pattern: re.Pattern[str], value: str, form: str) -> str:
    """``value`` if ``pattern`` matches it; else a ValueError saying it must be ``form``
    (for a pydantic validator)."""
    return checked(None if pattern.match(value) else f"must be {form}", value)



# --- files a setting names -----------------------------------------------------------------


def state_dir_problem(directory: Path) -> str | None:
    """Why a run could not create or write ``directory``; None when it can."""
    probe = directory.absolute()
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent  # the nearest part that exists: mkdir -p starts there
    if not probe.is_dir():
        return f"{probe} is not a directory" + (f" (so {directory} cannot be one)"
                                                 if probe != directory.absolute() else "")
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user" + (
            f" (to create {directory} in it)" if probe != directory.absolute() else "")
    return None


def file_problem(path: str, *, ca: bool = False) -> str | None:
    """Why a run could not read the file at ``path``; None when it can.

    ``ca``: also load it the way the TLS clients do, so a file that is there but holds no
    certificate is found now, not at connect time.
    """
    file = Path(path)
    if not file.exists():
        return f"{path}: no such file"
    if not file.is_file():
        return f"{path} is not a file"
    if not os.access(file, os.R_OK):
        return f"{path} is not readable by this user"
    if ca:
        try:
            ssl.create_default_context(cafile=path)
        except (ssl.SSLError, ValueError) as exc:
            return f"{path} is not a PEM CA bundle ({getattr(exc, 'reason', None) or exc})"
    return None


def key_pair_problem(certfile: str, keyfile: str) -> str | None:
    """Why the client certificate and key cannot be loaded (a key with a passphrase cannot:
    no setting gives one, and OpenSSL would ask for it on the terminal)."""
    try:
        ssl.create_default_context().load_cert_chain(certfile, keyfile, password=lambda: b"")
    except (ssl.SSLError, ValueError) as exc:
        return (f"{certfile} and {keyfile} are not a PEM certificate and its unencrypted key "
                f"({getattr(exc, 'reason', None) or exc})")
    return None


