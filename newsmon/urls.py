"""URLs: the canonical form that makes copies of one page agree, and the form safe to show.

One definition for both halves: the connectors key items without a guid by their canonical
link, the pipeline derives an article's ``doc_id`` from it, so the two must never disagree.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameters that only track the reader or the click (compared in lower case);
#: removing them makes copies of one page share a canonical URL. The union of the lists the
#: connectors and the pipeline had before they were merged, so no article's ``doc_id``
#: changes but for the four the connectors' list alone had (``wt.mc_id``, ``ns_*``). (w3lib's
#: list is similar; it is not worth a dependency.)
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "msclkid", "yclid", "mc_cid", "mc_eid", "igshid", "_ga",
    "_gl", "ref", "ref_src", "cmpid", "ito", "ocid", "smid", "cid", "s_cid", "icid", "rss",
    "from", "utm", "wt.mc_id", "ns_source", "ns_mchannel", "ns_campaign",
})
#: Families of tracking parameters: Google Analytics (utm_), AT Internet (at_), Matomo and
#: Piwik (mtm_, pk_).
TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_")


def _tracking(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, no fragment, no tracking parameters, an
    empty path as ``/``; an IPv6 host keeps its brackets. Only http(s) URLs are rewritten:
    anything else, and a URL whose port or IPv6 address does not parse, is returned stripped,
    as given. A fixed point: a canonical URL is its own canonical form."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return url
    host = parts.hostname  # lower case, and without an IPv6 address's brackets
    if ":" in host:
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not _tracking(k)]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def redacted_url(url: str) -> str:
    """``scheme://host:port`` of a URL, for messages and logs: no user information, no path,
    no query (a webhook's path is often its secret, a search URL may carry a password)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparseable URL)"
    host = parts.hostname or ""
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}{port}"
