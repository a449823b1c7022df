"""The search server's client, built once from the settings: credentials, TLS, timeouts, the
Elasticsearch/OpenSearch fork and the exception classes of each; and the words for what went
wrong, with the URL's credentials redacted. The store and doctor both use these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from newsmon.config import SearchSettings

#: Answers of a server that is up but not ready (shards still recovering after a restart,
#: a proxy in front of a node that is starting): worth waiting for like a refused connection.
RECOVERING_STATUSES = frozenset({502, 503, 504})


def _orjson_serializers() -> dict[str, Any]:
    """The Elasticsearch client's JSON and NDJSON (bulk) serializers on orjson rather than
    the standard library: decoding the look-ups' hits and encoding the bulk bodies took ~9 %
    of the batch pipeline's CPU (issue 14), and orjson does either in a third of the time.
    Non-string keys are written as the standard library writes them (``OPT_NON_STR_KEYS``),
    what the client's own serializer converts (dates, decimals, UUIDs, numpy) is converted
    the same, and what orjson refuses (a lone surrogate in a string, an integer past 64 bits)
    is written by the standard library as before."""
    import orjson
    from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

    class Json(JsonSerializer):
        def json_dumps(self, data: Any) -> bytes:
            try:
                return orjson.dumps(data, default=self.default, option=options)
            except orjson.JSONEncodeError:
                return JsonSerializer.json_dumps(self, data)

        def json_loads(self, data: bytes) -> Any:
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                return JsonSerializer.json_loads(self, data)

    class Ndjson(NdjsonSerializer):
        # The client's NDJSON serializer has no orjson variant; its dumps() writes a line
        # per item with json_dumps, and loads() reads one with json_loads.
        json_dumps = Json.json_dumps
        json_loads = Json.json_loads

    return {"application/json": Json(), "application/x-ndjson": Ndjson()}


def search_auth_http(settings: SearchSettings) -> dict[str, Any]:
    """The credentials as keyword arguments for an ``httpx.Client`` (doctor's raw checks):
    an API key wins over a user name and password, as in the store's own clients."""
    if settings.api_key is not None:
        return {"headers": {"Authorization": f"ApiKey {settings.api_key.get_secret_value()}"}}
    if settings.username and settings.password is not None:
        return {"auth": (settings.username, settings.password.get_secret_value())}
    return {}


def connection_problem(exc: BaseException) -> str:
    """What a connection failure means, in words that say what to do for TLS ones."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ("TLS: the server's certificate is not trusted (certificate verify failed); set "
                "NEWSMON_SEARCH__CA_CERTS (search.ca_certs) to the CA that signed it")
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "TLS: the server does not speak TLS on this port (use http://, not https://)"
    if "RemoteDisconnected" in text:
        return (f"{text} (the server closed the connection without an answer: a server with "
                "TLS addressed with http:// does that; use https://)")
    return text


def access_denied(status: int, exc: BaseException) -> str:
    info = getattr(exc, "body", None) or getattr(exc, "info", None)
    reason = ""
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        reason = f": {info['error'].get('reason', '')}"
    what = "authentication failed" if status == 401 else "permission denied"
    return (f"{what} (HTTP {status}){reason}; check NEWSMON_SEARCH__API_KEY, or "
            "search.username and NEWSMON_SEARCH__PASSWORD")


@dataclass(frozen=True)
class Client:
    """A connected client and the exception classes its library raises."""

    client: Any
    #: Connection-level failures (refused, reset, timed out, TLS).
    unavailable: tuple[type[BaseException], ...]
    conflict: type[BaseException]
    not_found: type[BaseException]
    #: Errors the server answered with (carry an HTTP status).
    api_error: tuple[type[BaseException], ...]


def connect(settings: SearchSettings) -> Client:
    """The client for ``settings.backend`` (elasticsearch or opensearch), not yet used."""
    if settings.backend == "elasticsearch":
        import elasticsearch
        auth: dict[str, Any] = {}
        if settings.ca_certs:
            auth["ca_certs"] = settings.ca_certs
        if settings.api_key is not None:
            auth["api_key"] = settings.api_key.get_secret_value()
        elif settings.username and settings.password is not None:
            auth["basic_auth"] = (settings.username, settings.password.get_secret_value())
        client: Any = elasticsearch.Elasticsearch(
            settings.url,
            verify_certs=settings.verify_certs,
            request_timeout=settings.request_timeout_s,
            serializers=_orjson_serializers(),
            **auth,
        )
        return Client(client, (elasticsearch.ConnectionError, elasticsearch.TransportError),
                      elasticsearch.ConflictError, elasticsearch.NotFoundError,
                      (elasticsearch.ApiError,))
    import opensearchpy
    http_auth = None
    if settings.username and settings.password is not None:
        http_auth = (settings.username, settings.password.get_secret_value())
    headers = {}
    if settings.api_key is not None:
        headers["Authorization"] = "ApiKey " + settings.api_key.get_secret_value()
    client = opensearchpy.OpenSearch(
        hosts=[settings.url],
        http_auth=http_auth,
        headers=headers or None,
        verify_certs=settings.verify_certs,
        ca_certs=settings.ca_certs,
        timeout=settings.request_timeout_s,
    )
    return Client(client, (opensearchpy.ConnectionError,), opensearchpy.ConflictError,
                  opensearchpy.NotFoundError, (opensearchpy.TransportError,))
