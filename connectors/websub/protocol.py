"""The subscriber's side of the WebSub wire protocol: finding a feed's hub and its own URL,
asking a hub to (un)subscribe, and checking the signature of pushed content.

Spec sections: 4 (discovery), 5.1 (subscriber sends a subscription request), 7.1
(authenticated content distribution).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import feedparser
import httpx

from newsmon.connectors.guard import AddressGuard, Transport
from newsmon.connectors.http import HttpSettings
from newsmon.connectors.xmlguard import defuse
from newsmon.values import http_url_problem

log = logging.getLogger(__name__)

#: The signature methods of spec 7.1 (the hub chooses; sha1 is still the most common).
ALGORITHMS: Mapping[str, Any] = {
    "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
#: One ``<url>; params`` element of a Link header (RFC 8288); URLs hold no ``>``.
_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r"""(?i)\brel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""")


@dataclass(frozen=True)
class Discovery:
    """What a feed says about push: its hub (None: it names none) and its own canonical URL,
    the topic a subscription must name (spec 4: the ``self`` link, else the URL fetched)."""

    hub: str | None
    topic: str


def link_header_rels(value: str) -> list[tuple[str, frozenset[str]]]:
    """Each ``<url>; rel="a b"`` of a Link header value (several headers joined by commas)
    as (url, rels in lower case); elements without a rel are left out."""
    out = []
    for match in _LINK.finditer(value):
        rel = _REL.search(match.group(2))
        if rel:
            rels = frozenset((rel.group(1) or rel.group(2) or "").lower().split())
            out.append((match.group(1).strip(), rels))
    return out


def _document_links(content: bytes) -> list[tuple[str, frozenset[str]]]:
    """``<atom:link rel=...>`` / ``<link rel=...>`` of the feed itself, read by feedparser
    from the defused document (the same precautions as rss.parse_feed)."""
    try:
        parsed = feedparser.parse(io.BytesIO(defuse(content).content), sanitize_html=False,
                                  resolve_relative_uris=False)
        links = parsed.get("feed", {}).get("links") or []
        return [(str(link.get("href") or ""), frozenset(str(link.get("rel") or "").lower()
                                                         .split())) for link in links]
    except Exception:  # a feed feedparser cannot read names no hub
        log.debug("feed links unreadable", exc_info=True)
        return []


def discover(url: str, headers: Mapping[str, str], content: bytes) -> Discovery:
    """The hub and topic of a feed fetched from ``url`` (lower-case ``headers``). Link
    headers come first, then the document (spec 4); a hub that is not an http(s) URL is
    ignored, relative URLs resolve against ``url``."""
    hub: str | None = None
    topic: str | None = None
    for links in (link_header_rels(headers.get("link", "")), _document_links(content)):
        for href, rels in links:
            absolute = urljoin(url, href)
            if http_url_problem(absolute):
                continue
            if "hub" in rels and hub is None:
                hub = absolute
            if "self" in rels and topic is None:
                topic = absolute
        if hub is not None:
            break
    return Discovery(hub=hub, topic=topic or url)


def hub_client(settings: HttpSettings, *, allow_private: bool) -> httpx.Client:
    """The client for hub requests. A hub's URL comes from feed content, so its host must be
    public (the address guard, as for article pages) unless private addresses are allowed;
    no redirects (a hub that moved is named anew by its feed)."""
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    return httpx.Client(
        headers={"User-Agent": settings.user_agent},
        timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        follow_redirects=False, trust_env=False, limits=limits,
        transport=Transport(AddressGuard(allow_private=allow_private), limits, trust_env=False),
    )


def hub_request(
    client: httpx.Client, hub: str, *, mode: str, topic: str, callback: str,
    secret: str | None = None, lease_s: int | None = None,
) -> str | None:
    """POST a (un)subscription request (spec 5.1); None when the hub accepted it (any 2xx,
    202 by the spec), else why not. Never raises: a hub that cannot be reached is a reason."""
    form = {"hub.callback": callback, "hub.mode": mode, "hub.topic": topic}
    if secret is not None:
        form["hub.secret"] = secret
    if lease_s is not None:
        form["hub.lease_seconds"] = str(lease_s)
    try:
        response = client.post(hub, data=form)
    except httpx.HTTPError as exc:  # every transport failure, the guard's refusal included
        return f"hub {hub} not reached: {type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"hub {hub} refused {mode}: HTTP {response.status_code}: {response.text[:200]!r}"


def signature_problem(header: str | None, secret: str, body: bytes) -> str | None:
    """Why ``X-Hub-Signature: method=hex`` does not authenticate ``body`` with ``secret``
    (missing, an unknown method, a wrong digest); None when it does. Constant-time compare."""
    if not header:
        return "no X-Hub-Signature"
    method, _, digest = header.strip().partition("=")
    algorithm = ALGORITHMS.get(method.strip().lower())
    if algorithm is None:
        return f"unknown signature method {method[:20]!r}"
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    given = digest.strip().lower()
    # compare_digest refuses non-ASCII text: a header can carry any latin-1 character.
    if not given.isascii() or not hmac.compare_digest(expected, given):
        return f"wrong {method.lower()} signature"
    return None
