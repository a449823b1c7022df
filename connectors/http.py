"""The one HTTP client of the connectors: timeouts, size limit, conditional GET, address guard.

Every fetch goes through :class:`HttpClient`:

- timeouts for connect, read and the whole exchange, so a stalled or slow-drip server cannot
  hold a worker (feedparser's own fetching has no timeout at all);
- a size limit enforced while streaming, on the raw body, on every decoded layer and on the
  decoded body: the client reads the raw bytes and undoes the Content-Encoding itself in
  bounded steps (connectors/codings.py), so no encoding chain (``gzip, gzip``, ``br, deflate``)
  can inflate past ``max_bytes`` or fill the memory first;
- a User-Agent naming newsmon and a contact, and compressed transfer (gzip, deflate, br, zstd:
  exactly what codings.py decodes);
- conditional GET: the caller passes the stored ETag / Last-Modified and gets a 304 back;
  validators that could not be sent back as they came (not visible ASCII) are dropped;
- redirects followed by hand, at most ``max_redirects``, each hop checked like the first;
- an optional :class:`~newsmon.connectors.guard.AddressGuard` for URLs taken from feed content
  (article links): the host is resolved and *every* address must be public, before the
  request and again at connect time (guard.py: the check sits in the network backend, so a
  DNS answer that changes between the check and the connect, "DNS rebinding", is caught too).

Configured feed URLs are trusted: their client has no guard (tests serve feeds on 127.0.0.1)
and may read ``file://`` URLs (the offline demo). Where a configured URL *redirects* to is not:
the operator trusted the URL, not the remote server. A redirect of such a client is followed
only to the configured URL's own origin (scheme, host, port), to a host listed in
``HttpSettings.redirect_allow``, or to a host whose every address is public (checked before
the request and again at connect time, as for the guard above); any other target is a
:class:`BlockedAddressError` of kind ``blocked-redirect`` naming it, and is never contacted.

HTTP error statuses are *results* (the caller decides about 404 or 429); only transport
failures raise :class:`FetchError`.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from math import ceil
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from newsmon.closing import Closing
from newsmon.connectors.codings import ACCEPT_ENCODING, BodyTooLarge, CodingError, decode
from newsmon.connectors.fields import ascii_int, header_token
from newsmon.connectors.guard import (
    DEADLINE,
    HOP_GUARD,
    AddressGuard,
    BlockedAddressError,
    FetchError,
    Transport,
    readable_url,
    url_port,
)
from newsmon.connectors.hosts import THROTTLE_STATUSES, HostGate

log = logging.getLogger(__name__)

USER_AGENT = "newsmon/0.1 (news monitoring; +https://github.com/newsmon/newsmon)"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})

class HttpSettings(BaseModel):
    """Limits of one fetch. The defaults suit news feeds: most are < 1 MB, all are < 10 MB."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=20.0, gt=0)
    #: The whole exchange, body included: a server sending one byte a second defeats a read
    #: timeout but not this.
    total_timeout_s: float = Field(default=60.0, gt=0)
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    user_agent: str = USER_AGENT
    #: Hosts (``name``, ``name:port``, ``[v6]:port``) a configured feed may redirect to even
    #: though they are not public and not the feed's own origin: a feed server on the LAN
    #: that moves its feeds to another port, say. Public hosts need no entry.
    redirect_allow: tuple[str, ...] = ()

    @field_validator("redirect_allow")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for entry in value:
            host, port = _host_port(entry)
            if not host:
                raise ValueError(f"redirect_allow: {entry!r} is not a host or host:port")
            out.append(f"[{host}]" if ":" in host else host)
            if port is not None:
                out[-1] += f":{port}"
        return tuple(out)

    def allows_redirect_to(self, url: str) -> bool:
        """True when ``url``'s host (and port, when the entry names one) is listed."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        for entry in self.redirect_allow:
            allowed_host, allowed_port = _host_port(entry)
            if allowed_host == host and allowed_port in (None, url_port(parts)):
                return True
        return False


def _host_port(entry: str) -> tuple[str, int | None]:
    """(lower-case host, port or None) of ``host``, ``host:port`` or ``[v6]:port``; ('', None)
    when ``entry`` is anything else (a URL, a path, a bad port)."""
    if not entry or any(c in entry for c in "/?#@ \t"):
        return "", None
    try:
        parts = urlsplit(f"//{entry}")
        port = parts.port
    except ValueError:
        return "", None
    return (parts.hostname or "").lower(), port


@dataclass(frozen=True)
class Response:
    """A complete HTTP answer (any status). Header names are lower case. ``content`` is the
    decoded body of a 2xx answer; the bodies of other statuses are read (within the size
    limit, so the connection can be reused) and dropped: nothing reads them."""

    url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    #: Set when a hop answered 301 or 308: where the resource lives now.
    moved_to: str | None = None
    #: No request was made: the host is cooling down after a 429/503 (this answer is a
    #: stand-in 429 whose Retry-After is the cooldown left).
    cooled_down: bool = False

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def etag(self) -> str | None:
        """The ETag when it can be sent back as it came (see fields.header_token)."""
        return header_token(self.headers.get("etag"))

    @property
    def last_modified(self) -> str | None:
        return header_token(self.headers.get("last-modified"))

    def retry_after_s(self, now: datetime) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"), now)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds in ASCII digits, or an HTTP
    date), or None when absent or unreadable: Unicode digits, signs, fractions, more than
    nine digits, dates Python cannot represent. Never negative; callers cap it."""
    if not isinstance(value, str) or not value.strip():
        return None
    seconds = ascii_int(value)
    if seconds is not None:
        return float(seconds)
    if len(value) > 100:  # no date is that long; spare the date parser
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class HttpClient(Closing):
    """One connection pool, thread-safe (httpx.Client is), shared by all pollers of a process.

    ``guard=None`` is for configured URLs (which may be loopback or ``file://``); pass an
    :class:`AddressGuard` for URLs that come from feed content. Such a client checks where
    redirects lead with ``redirect_guard`` (public addresses only, by default), unless the
    target is the configured URL's own origin or listed in ``settings.redirect_allow``.
    """

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        guard: AddressGuard | None = None,
        max_connections: int = 32,
        transport: httpx.BaseTransport | None = None,
        gate: HostGate | None = None,
        redirect_guard: AddressGuard | None = None,
    ) -> None:
        self.settings = settings or HttpSettings()
        self.guard = guard
        #: Without a guard (configured URLs), where redirects may lead: see the module notes.
        self.redirect_guard = redirect_guard or AddressGuard()
        #: Per-host politeness (see hosts.py); shared by the clients of one poller.
        self.gate = gate
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        if transport is None:
            transport = Transport(guard, limits, trust_env=guard is None)
        s = self.settings
        self._client = httpx.Client(
            headers={"User-Agent": s.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(s.read_timeout_s, connect=s.connect_timeout_s),
            follow_redirects=False,  # followed by hand so every hop is checked and counted
            limits=limits,
            transport=transport,
            # Proxies from the environment would bypass the guard's view of the real target.
            trust_env=guard is None,
        )

    def close(self) -> None:
        self._client.close()


    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
    ) -> Response:
        """GET ``url`` following redirects; raises :class:`FetchError` when no answer came."""
        if url.lstrip()[:5].lower() == "file:":
            if self.guard is not None:
                raise BlockedAddressError(f"file URLs are allowed for configured feeds only: {url}")
            return self._read_file(url, last_modified)
        headers = {"Accept": accept} if accept else {}
        # A validator stored before it was checked (or by an older version) must not make
        # every later request of this feed fail: one that cannot be sent is not sent.
        if etag := header_token(etag):
            headers["If-None-Match"] = etag
        if last_modified := header_token(last_modified):
            headers["If-Modified-Since"] = last_modified
        return self._follow(url, headers)

    def _vet_redirect(self, origin: str, source: str, target: str) -> AddressGuard | None:
        """For a client without a guard: None when ``target`` is trusted like the configured
        ``origin`` (same scheme, host and port) or listed in ``redirect_allow``; else the guard
        its connection must pass, once its host resolved to public addresses only. Raises
        :class:`BlockedAddressError` (``blocked-redirect``) naming the target otherwise."""
        a, b = urlsplit(origin), urlsplit(target)
        same_origin = (a.scheme, (a.hostname or "").lower(), url_port(a)) == (
            b.scheme, (b.hostname or "").lower(), url_port(b))
        if same_origin or self.settings.allows_redirect_to(target):
            return None
        try:
            self.redirect_guard.check_url(target)
        except BlockedAddressError as exc:
            raise BlockedAddressError(
                f"redirect from {source} to {target} refused: {exc}; a configured feed is"
                " followed only to its own origin, public addresses and the hosts in"
                " defaults.http.redirect_allow", kind="blocked-redirect",
            ) from exc
        return self.redirect_guard

    def _follow(self, url: str, headers: Mapping[str, str]) -> Response:
        # The total timeout covers the exchange (every hop), not the wait for a host's slot:
        # a host kept busy by other sources must not make this fetch time out.
        budget = self.settings.total_timeout_s
        current = url
        moved_to: str | None = None
        previous = url
        for _hop in range(self.settings.max_redirects + 1):
            readable_url(current, "URL" if current == url else f"redirect from {previous} to")
            hop_guard: AddressGuard | None = None
            if self.guard is not None:
                self.guard.check_url(current)
            elif current != url:
                hop_guard = self._vet_redirect(url, previous, current)
            host = urlsplit(current).hostname or ""
            if self.gate is not None and (left := self.gate.cooldown_left(host)) > 0:
                log.debug("%s: host %s cooling down for %.0f s more", current, host, left)
                return Response(url=current, status=429, headers={"retry-after": str(ceil(left))},
                                moved_to=moved_to, cooled_down=True)
            with self.gate.request(host) if self.gate is not None else nullcontext():
                started = time.monotonic()
                deadline = started + budget
                token = DEADLINE.set(deadline)
                hop_token = HOP_GUARD.set(hop_guard)
                try:
                    response = self._get_one(current, headers, deadline)
                except BlockedAddressError as exc:
                    if hop_guard is None:
                        raise
                    # The name resolved to public addresses a moment ago and to others at
                    # connect time (DNS rebinding): the same refusal as above.
                    raise BlockedAddressError(
                        f"redirect from {previous} to {current} refused at connect time: {exc}",
                        kind="blocked-redirect",
                    ) from exc
                finally:
                    HOP_GUARD.reset(hop_token)
                    DEADLINE.reset(token)
                budget -= time.monotonic() - started
            if self.gate is not None and response.status in THROTTLE_STATUSES:
                self.gate.cool_down(host, response.retry_after_s(datetime.now(UTC)))
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                if moved_to is not None:
                    response = replace(response, moved_to=moved_to)
                return response
            try:
                nxt = urljoin(current, location)
            except ValueError as exc:  # "http://[zz": urllib refuses to split it
                raise FetchError("bad-url", f"unreadable Location {location[:300]!r} from"
                                 f" {current}: {exc}", hard=True) from exc
            if urlsplit(nxt).scheme not in ("http", "https"):
                raise BlockedAddressError(f"redirect from {current} to non-HTTP URL {nxt}")

            # Only an unbroken chain of permanent redirects moves the resource for good.
            if response.status in (301, 308) and (moved_to is not None or current == url):
                moved_to = nxt
            previous, current = current, nxt
        raise FetchError(
            "redirects", f"more than {self.settings.max_redirects} redirects from {url}", hard=True
        )

    def _get_one(self, url: str, headers: Mapping[str, str], deadline: float) -> Response:
        limit = self.settings.max_bytes
        try:
            with self._client.stream("GET", url, headers=headers) as r:
                ok = 200 <= r.status_code < 300
                declared = ascii_int(r.headers.get("content-length"), max_digits=18)
                if declared is not None and declared > limit and ok:
                    raise FetchError(
                        "too-large", f"{url}: Content-Length {declared} > {limit}", hard=True
                    )
                # The raw bytes, decoded here in bounded steps: httpx would inflate each
                # chunk whole, whatever the ratio (codings.py).
                raw = r.iter_raw()
                pieces = decode(raw, r.headers.get("content-encoding"), limit) if ok else raw
                chunks: list[bytes] = []
                size = 0
                for piece in pieces:
                    size += len(piece)
                    if size > limit:
                        raise BodyTooLarge(f"body over {limit} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(
                            "timeout", f"{url}: over {self.settings.total_timeout_s}s in total"
                        )
                    if ok:
                        chunks.append(piece)
                return Response(
                    url=str(r.url),
                    status=r.status_code,
                    headers={k.lower(): v for k, v in r.headers.items()},
                    content=b"".join(chunks),
                )
        except BodyTooLarge as exc:
            raise FetchError("too-large", f"{url}: {exc}", hard=True) from exc
        except CodingError as exc:
            raise FetchError("decoding", f"{url}: {exc}", hard=exc.unsupported) from exc
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline:
                raise FetchError(
                    "timeout", f"{url}: over {self.settings.total_timeout_s}s in total"
                ) from exc
            raise FetchError("timeout", f"{url}: {type(exc).__name__}") from exc
        except httpx.ConnectError as exc:
            kind = "dns" if _is_dns_failure(exc) else "connect"
            raise FetchError(kind, f"{url}: {exc}", hard=kind == "dns") from exc
        except httpx.DecodingError as exc:
            raise FetchError("decoding", f"{url}: {exc}") from exc
        except (httpx.InvalidURL, ValueError) as exc:
            # httpx reads a redirect's Location itself (for ``next_request``) even when it
            # does not follow it: a host IDNA cannot decode ("xn--") raises IDNAError there.
            raise FetchError("bad-url", f"{url}: unreadable URL: {type(exc).__name__}: {exc}",
                             hard=True) from exc
        except httpx.HTTPError as exc:  # protocol errors, closed connections, bad URLs
            raise FetchError("protocol", f"{url}: {type(exc).__name__}: {exc}") from exc

    def _read_file(self, url: str, last_modified: str | None) -> Response:
        try:
            path = Path(url2pathname(urlsplit(url).path))
            stat = path.stat()
            mtime = email.utils.formatdate(stat.st_mtime, usegmt=True)
            if last_modified == mtime:
                return Response(url=url, status=304, headers={"last-modified": mtime})
            if stat.st_size > self.settings.max_bytes:
                raise FetchError("too-large", f"{url}: {stat.st_size} bytes", hard=True)
            content = path.read_bytes()
        except FileNotFoundError as exc:
            raise FetchError("not-found", f"{url}: no such file", hard=True) from exc
        except OSError as exc:
            raise FetchError("file", f"{url}: {exc.strerror or exc}", hard=True) from exc
        except ValueError as exc:  # "file://[x/": urllib cannot split it
            raise FetchError("bad-url", f"unreadable URL {url[:300]!r}: {exc}", hard=True
                             ) from exc
        return Response(url=url, status=200, headers={"last-modified": mtime}, content=content)


def _is_dns_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return "Name or service not known" in text or "nodename nor servname" in text
