"""What a fetch may connect to, and until when.

* :class:`AddressGuard` refuses hosts that resolve to any non-public address (server-side
  request forgery): for URLs taken from feed content, and for where a configured feed
  redirects to (see http.py);
* the network backend under :class:`Transport` applies the guard at connect time, to every
  address of every hop (so a DNS answer that changes between the check and the connect, "DNS
  rebinding", is caught too), and ends every socket operation of an exchange by its deadline
  (so a server that sends one byte of its headers per second cannot hold a worker);
* the errors a fetch ends with when no HTTP answer came (:class:`FetchError`,
  :class:`BlockedAddressError`).
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import ssl
import time
import typing
from collections.abc import Callable, Iterable
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx

Resolver = Callable[[str, int], list[str]]


class FetchError(Exception):
    """A fetch that produced no HTTP response. ``kind`` is a short stable name for health
    tables and metrics; ``hard`` says whether retrying soon is pointless (a name that does not
    resolve, a blocked address, a body over the limit) as opposed to transient (a timeout)."""

    def __init__(self, kind: str, message: str, *, hard: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.hard = hard

    # Keyword state is not in ``args``: without this a pickled copy is rebuilt from the
    # message alone (the wrong arity for __init__) and unpickling fails.
    def __reduce__(self) -> tuple[typing.Any, ...]:
        return (_fetch_error, (type(self), self.kind, str(self), self.hard))


class BlockedAddressError(FetchError):
    """The URL points at a private, loopback, link-local or otherwise non-public address
    (kind ``blocked-address``), or a configured feed redirected to one (``blocked-redirect``)."""

    def __init__(self, message: str, kind: str = "blocked-address") -> None:
        super().__init__(kind, message, hard=True)


def _fetch_error(cls: type[FetchError], kind: str, message: str, hard: bool) -> FetchError:
    error = FetchError.__new__(cls)
    FetchError.__init__(error, kind, message, hard=hard)
    return error


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for private, loopback, link-local,
    multicast, reserved, unspecified, shared (CGNAT) and documentation ranges, also when written
    as an IPv4-mapped or 6to4/Teredo IPv6 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast


def readable_url(url: str, what: str = "URL") -> str:
    """``url`` when it is an http(s) URL with a host that a request can be built for (a port
    in range, a host name IDNA can encode), else :class:`FetchError` of kind ``bad-url``.
    Redirect targets and article links come from the network: ``http://[zz``,
    ``http://x:99999/`` or ``http://xn--/`` made urllib or httpx raise ValueError, which
    escaped as a crash of the whole poll."""
    try:
        parts = urlsplit(url)
        _ = parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:  # IDNAError is a ValueError
        raise FetchError("bad-url", f"unreadable {what} {url[:300]!r}: {exc}", hard=True) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("bad-url", f"{what} {url[:300]!r} is no http(s) URL with a host",
                         hard=True)
    return url


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class AddressGuard:
    """Refuses URLs whose host resolves to any non-public address (server-side request forgery).

    Every resolved address is checked, not just the first: a name with one public and one
    private address would otherwise let the connect pick the private one.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        is_allowed: Callable[[str], bool] = is_public_address,
    ) -> None:
        self.allow_private = allow_private
        self._resolve = resolver or _system_resolver
        # Injectable so tests can treat one loopback address as "public" and serve on it.
        self._is_allowed = is_allowed

    def vetted_addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to; raises :class:`BlockedAddressError` or, when the name
        does not resolve, :class:`FetchError` of kind ``dns``."""
        try:
            addresses = self._resolve(host.strip("[]"), port)
        except (OSError, UnicodeError) as exc:
            raise FetchError("dns", f"cannot resolve {host}: {exc}", hard=True) from exc
        if not addresses:
            raise FetchError("dns", f"cannot resolve {host}: no addresses", hard=True)
        if not self.allow_private:
            blocked = [a for a in addresses if not self._is_allowed(a)]
            if blocked:
                raise BlockedAddressError(
                    f"{host} resolves to non-public address(es) {', '.join(blocked)}"
                )
        return addresses

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise BlockedAddressError(f"scheme {parts.scheme or '(none)'!r} is not allowed: {url}")
        if not parts.hostname:
            raise BlockedAddressError(f"no host in {url}")
        readable_url(url)
        self.vetted_addresses(parts.hostname, url_port(parts))


#: The guard of the current hop of an unguarded client (a redirect away from the configured
#: origin), set by HttpClient._follow for the calling thread.
HOP_GUARD: contextvars.ContextVar[AddressGuard | None] = contextvars.ContextVar(
    "newsmon_http_hop_guard", default=None
)


#: When the current exchange must be over (time.monotonic()); set by HttpClient.get for the
#: calling thread, read by every socket operation of that exchange.
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "newsmon_http_deadline", default=None
)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the exchange's total time; ``error`` when none is."""
    deadline = DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the exchange is over its total time limit")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read and write ends by the exchange's deadline.

    A per-read timeout alone lets a server that sends one byte of its *headers* per second
    hold a worker for as long as it likes; httpx has no total timeout. Checking the body
    between chunks is not enough either: the headers are read before the first chunk.
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        ))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    """Connects only to vetted addresses: the guard (the client's, else the current hop's)
    runs at connect time, for every hop; without either, a plain connect. Every connection is
    a :class:`_DeadlineStream`, and connecting too ends by the exchange's deadline."""

    def __init__(self, guard: AddressGuard | None) -> None:
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,  # httpcore's SOCKET_OPTION union
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        guard = self._guard or HOP_GUARD.get()
        if guard is None:
            return _DeadlineStream(
                super().connect_tcp(host, port, timeout, local_address, socket_options))
        last: OSError | httpcore.ConnectError | None = None
        for address in guard.vetted_addresses(host, port):
            try:
                # TLS keeps using the URL's host name for SNI and certificate checks: httpcore
                # takes it from the request, not from the address connected to.
                return _DeadlineStream(
                    super().connect_tcp(address, port, timeout, local_address, socket_options))
            except (OSError, httpcore.ConnectError) as exc:
                last = exc
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}: {last}")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not used")


class Transport(httpx.HTTPTransport):
    def __init__(
        self, guard: AddressGuard | None, limits: httpx.Limits, *, trust_env: bool
    ) -> None:
        super().__init__(limits=limits, trust_env=trust_env)
        # httpx exposes no way to pass a network backend; replacing the pool it built is the
        # smallest change that keeps httpx's own request/response and exception mapping.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=trust_env),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(guard),
        )


def url_port(parts: SplitResult) -> int:
    """The port a split http(s) URL connects to (urlsplit's ``port`` raises on garbage)."""
    try:
        port: int | None = parts.port
    except ValueError:
        port = None
    return port or (443 if parts.scheme == "https" else 80)
