"""The search-server adapter: one small interface over Elasticsearch, OpenSearch and SQLite.

Beam's Python SDK has no Elasticsearch sink (apache/beam#30594), so the pipeline's write stages
call this adapter from DoFns. Contract shared by every backend:

* writes are keyed by content-derived ids, so re-writing after a crash changes nothing;
* ``bulk_write`` returns the documents the server rejected (mapping errors and the like: bad
  data, which the caller dead-letters) and raises :class:`StoreUnavailable` when the server
  cannot be reached, so the run fails and is retried without committing offsets;
* ``create`` is atomic (exactly one caller wins) and ``replace_if`` is an optimistic,
  version-guarded write: together they merge alert updates without a script engine, which the
  Maven Central Elasticsearch build lacks;
* ``get``, ``find_terms`` and ``scan`` read across every index of a kind (for articles: the
  monthly indices behind their alias).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from .config import SearchSettings
from .mappings import (
    ID_FIELDS,
    LANGUAGE_ANALYZERS,
    MAPPINGS,
    MONTHLY,
    TIME_FIELDS,
    index_name,
    index_template,
    kind_mapping,
    monthly_index,
    replicas_for,
)

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


#: Answers of a server that is up but not ready (shards still recovering after a restart,
#: a proxy in front of a node that is starting): worth waiting for like a refused connection.
RECOVERING_STATUSES = frozenset({502, 503, 504})


class StoreUnavailable(RuntimeError):
    """The search server could not be reached or answered with a server error.

    Also: it refused our credentials (HTTP 401/403) or its TLS certificate is not trusted.
    Both are broken infrastructure, not bad data: the run fails and nothing is committed. The
    message says what to fix and never carries a secret.
    """


def _safe_url(url: str) -> str:
    """The URL without user information (``https://user:secret@host`` -> ``https://host``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _connection_problem(exc: BaseException) -> str:
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


def _access_denied(status: int, exc: BaseException) -> str:
    info = getattr(exc, "body", None) or getattr(exc, "info", None)
    reason = ""
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        reason = f": {info['error'].get('reason', '')}"
    what = "authentication failed" if status == 401 else "permission denied"
    return (f"{what} (HTTP {status}){reason}; check NEWSMON_SEARCH__API_KEY, or "
            "search.username and NEWSMON_SEARCH__PASSWORD")


class StoreSetupError(RuntimeError):
    """The server holds something ``setup`` must not silently change (an old index layout)."""


@dataclass(frozen=True)
class BulkFailure:
    doc_id: str
    status: int
    error: str


@dataclass(frozen=True)
class BulkAction:
    doc_id: str
    index: str
    doc: Mapping[str, Any]


@dataclass(frozen=True)
class ItemResult:
    """One document's outcome in a bulk response (status 2xx: written)."""

    doc_id: str
    status: int
    error: str = ""


#: Per-document statuses worth retrying: the server is busy or a shard is briefly missing.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """Capped exponential backoff before retry number ``attempt`` (0-based)."""
    return float(min(max_s, initial_s * (2**attempt)))


def bulk_with_retry(
    send: Callable[[Sequence[BulkAction]], Sequence[ItemResult]],
    actions: Sequence[BulkAction],
    *,
    chunk_size: int,
    max_retries: int,
    initial_backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[BulkFailure]:
    """Send ``actions`` in chunks; retry only the documents that failed transiently.

    Rejected documents (mapping errors and other 4xx) come back as failures for the caller to
    dead-letter. Documents still failing transiently after ``max_retries`` retries raise
    :class:`StoreUnavailable`: the server is in trouble, not the data, so the run must fail
    and be retried rather than park good documents. ``send`` raises StoreUnavailable itself
    when the connection is lost.
    """
    failures: list[BulkFailure] = []
    for start in range(0, len(actions), chunk_size):
        todo = list(actions[start:start + chunk_size])
        attempt = 0
        while todo:
            by_id = {a.doc_id: a for a in todo}
            retry: list[BulkAction] = []
            for result in send(todo):
                if 200 <= result.status < 300:
                    continue
                if result.status in TRANSIENT_STATUSES:
                    retry.append(by_id[result.doc_id])
                else:
                    failures.append(BulkFailure(result.doc_id, result.status, result.error))
            if retry and attempt >= max_retries:
                raise StoreUnavailable(
                    f"{len(retry)} documents still failing after {max_retries} retries "
                    f"(first: {retry[0].doc_id})"
                )
            if retry:
                delay = backoff_s(attempt, initial_backoff_s, max_backoff_s)
                log.info("bulk: retrying %d of %d documents in %.1fs", len(retry), len(todo),
                         delay)
                sleep(delay)
                attempt += 1
            todo = retry
    return failures


def parse_time(value: str | datetime) -> datetime:
    """A stored ISO 8601 time as an aware UTC datetime."""
    if isinstance(value, datetime):
        stamp = value
    else:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _in_window(doc: Mapping[str, Any], field: str, since: datetime | None,
               until: datetime | None) -> bool:
    raw = doc.get(field)
    if not raw:
        return since is None and until is None
    try:
        stamp = parse_time(raw)
    except (TypeError, ValueError):
        return False
    return (since is None or stamp >= since) and (until is None or stamp < until)


def _matches_terms(doc: Mapping[str, Any], terms: Mapping[str, Sequence[str]]) -> bool:
    for field, wanted in terms.items():
        value = doc.get(field)
        values = value if isinstance(value, list | tuple) else [value]
        if not {str(v) for v in values} & {str(w) for w in wanted}:
            return False
    return True


@dataclass(frozen=True)
class Versioned:
    """A stored document with the version token ``replace_if`` needs."""

    source: JsonDict
    version: tuple[int, int]


class DocumentStore(Protocol):
    backend: str

    def setup(self) -> None: ...
    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]: ...
    def get(self, kind: str, doc_id: str) -> Versioned | None: ...
    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool: ...
    def create_many(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> set[str]: ...
    def replace_if(
        self, kind: str, doc_id: str, doc: JsonDict, version: tuple[int, int]
    ) -> bool: ...
    def find_terms(
        self,
        kind: str,
        field: str,
        values: Sequence[str],
        size: int = 50,
        fields: Sequence[str] | None = None,
    ) -> list[JsonDict]: ...
    def scan(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        terms: Mapping[str, Sequence[str]] | None = None,
        fields: Sequence[str] | None = None,
    ) -> Iterator[JsonDict]: ...
    def all_docs(self, kind: str, size: int = 10_000) -> list[JsonDict]: ...
    def count(self, kind: str) -> int: ...
    def refresh(self, kind: str) -> None: ...
    def close(self) -> None: ...


# --- Elasticsearch and OpenSearch ---------------------------------------------------------


class SearchServerStore:
    """Elasticsearch (``elasticsearch`` client) or OpenSearch (``opensearch-py``).

    The two clients share the bulk helper's shape and most call signatures; where they differ
    (keyword names of the 8.x client versus ``body=``) this class says so. New calls pass
    ``body=``, which both accept.
    """

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings
        self.backend: str = settings.backend
        self.prefix = settings.index_prefix
        if settings.backend == "elasticsearch":
            import elasticsearch
            from elasticsearch import helpers

            auth: dict[str, Any] = {}
            if settings.ca_certs:
                auth["ca_certs"] = settings.ca_certs
            if settings.api_key is not None:
                auth["api_key"] = settings.api_key.get_secret_value()
            elif settings.username and settings.password is not None:
                auth["basic_auth"] = (settings.username, settings.password.get_secret_value())
            self.client: Any = elasticsearch.Elasticsearch(
                settings.url,
                verify_certs=settings.verify_certs,
                request_timeout=settings.request_timeout_s,
                **auth,
            )
            self._helpers: Any = helpers
            self._unavailable: tuple[type[BaseException], ...] = (
                elasticsearch.ConnectionError,
                elasticsearch.TransportError,
            )
            self._conflict: type[BaseException] = elasticsearch.ConflictError
            self._not_found: type[BaseException] = elasticsearch.NotFoundError
            self._api_error: tuple[type[BaseException], ...] = (elasticsearch.ApiError,)
        else:
            import opensearchpy
            from opensearchpy import helpers as os_helpers

            http_auth = None
            if settings.username and settings.password is not None:
                http_auth = (settings.username, settings.password.get_secret_value())
            headers = {}
            if settings.api_key is not None:
                headers["Authorization"] = "ApiKey " + settings.api_key.get_secret_value()
            self.client = opensearchpy.OpenSearch(
                hosts=[settings.url],
                http_auth=http_auth,
                headers=headers or None,
                verify_certs=settings.verify_certs,
                ca_certs=settings.ca_certs,
                timeout=settings.request_timeout_s,
            )
            self._helpers = os_helpers
            self._unavailable = (opensearchpy.ConnectionError,)
            self._conflict = opensearchpy.ConflictError
            self._not_found = opensearchpy.NotFoundError
            self._api_error = (opensearchpy.TransportError,)
        #: Languages with an analyzer on this server (known after setup()).
        self.languages: tuple[str, ...] = ()
        #: Data nodes of the server and the replicas per index chosen for them (known after
        #: a full setup()).
        self.data_nodes = 1
        self.replicas = 0
        self._known_indices: set[str] = set()
        self._set_up = False

    def _name(self, kind: str) -> str:
        return index_name(self.prefix, kind)

    @staticmethod
    def _status(exc: BaseException) -> int | None:
        # ES ApiError and OpenSearch TransportError carry the HTTP status; connection errors
        # carry none (OpenSearch says "N/A").
        status = getattr(exc, "status_code", None)
        return status if isinstance(status, int) else None

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        waited, delay = 0.0, 1.0
        while True:
            try:
                return self._call_once(fn, *args, **kwargs)
            except StoreUnavailable as exc:
                # search.unavailable_wait_s: wait for the server to come back (a restart,
                # and the minutes after it when it answers 503 until its shards are
                # allocated again), but never for a refused credential or an untrusted
                # certificate.
                cause = exc.__cause__
                status = self._status(cause) if cause is not None else None
                coming_back = (isinstance(cause, self._unavailable)
                               or (status is not None and status in RECOVERING_STATUSES))
                if (not coming_back or "TLS:" in str(exc)
                        or waited + delay > self.settings.unavailable_wait_s):
                    raise
                log.warning("%s; retrying in %.0fs (waited %.0fs of %.0fs)", exc, delay, waited,
                            self.settings.unavailable_wait_s)
                time.sleep(delay)
                waited, delay = waited + delay, min(delay * 2, 15.0)

    def _call_once(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._unavailable as exc:
            if self._status(exc) in (400, 404, 409):
                raise
            raise StoreUnavailable(
                f"{self.backend} at {_safe_url(self.settings.url)}: {_connection_problem(exc)}"
            ) from exc
        except self._api_error as exc:
            status = self._status(exc)
            if status in (401, 403):
                raise StoreUnavailable(
                    f"{self.backend} at {_safe_url(self.settings.url)}: "
                    f"{_access_denied(status, exc)}"
                ) from exc
            if status is not None and status >= 500:
                raise StoreUnavailable(
                    f"{self.backend} at {_safe_url(self.settings.url)}: HTTP {status}: {exc}"
                ) from exc
            raise

    def detect_languages(self) -> tuple[str, ...]:
        """The article languages whose analyzer this server has (``_analyze`` answers 400 for
        a missing one: the Maven Central Elasticsearch build has none, OpenSearch most)."""
        found = []
        for lang, analyzer in LANGUAGE_ANALYZERS.items():
            try:
                self._call(self.client.indices.analyze,
                           body={"analyzer": analyzer, "text": "newsmon"})
            except self._api_error as exc:
                if self._status(exc) == 400:
                    continue
                raise
            found.append(lang)
        return tuple(sorted(found))

    def setup(self, full: bool = False) -> None:
        """Templates, indices and the article alias. Idempotent; safe to run on every start.

        Order matters: templates first, so every index created afterwards (here, or by the
        first write of a new month) gets the mappings and the alias. Existing indices get new
        fields added (additive changes only; a conflicting change raises StoreSetupError).
        The current month's article index is created so the alias exists before any write.

        Unless ``full``, a server that already holds exactly these templates, the alias and
        the current indices is left alone after three reads: every pipeline run (every round
        in stream mode) sets up, and the full path is some twenty calls, several of which
        update the cluster state. ``newsmon search setup`` always takes the full path.
        """
        self._set_up = True
        if not full and self._already_set_up():
            return
        alias = self._name("articles")
        if self._call(self.client.indices.exists, index=alias) and not self._call(
            self.client.indices.exists_alias, name=alias
        ):
            raise StoreSetupError(
                f"{alias} is an index from the old single-index layout; articles now live in "
                f"monthly indices behind the alias {alias}. Re-index it into "
                f"{alias}-YYYY.MM (or delete it), then run setup again."
            )
        self.languages = self.detect_languages() if self.settings.language_subfields else ()
        health = self._call(self.client.cluster.health)
        self.data_nodes = int(health.get("number_of_data_nodes", 1))
        self.replicas = replicas_for(self.data_nodes)
        for kind in MAPPINGS:
            body = index_template(self.prefix, kind, self.languages, self.replicas)
            self._call(self.client.indices.put_index_template, name=self._name(kind), body=body)
        now = datetime.now(UTC)
        for kind in MAPPINGS:
            name = self._name(kind)
            if kind in MONTHLY:
                self._ensure_index(monthly_index(self.prefix, kind, {"published_at": now}))
                # Monthly indices made before their template carried the alias join it too.
                self._call(self.client.indices.update_aliases, body={
                    "actions": [{"add": {"index": f"{name}-*", "alias": name}}]})
                pattern = f"{name}-*"
            else:
                self._ensure_index(name)
                pattern = name
            try:
                self._call(self.client.indices.put_mapping, index=pattern,
                           body=kind_mapping(kind, self.languages))
            except self._api_error as exc:
                raise StoreSetupError(f"{pattern}: the stored mapping conflicts with "
                                      f"newsmon's: {exc}") from exc
            # Indices made before (on one node, or before a node was added) follow too.
            self._call(self.client.indices.put_settings, index=pattern,
                       body={"index": {"number_of_replicas": self.replicas}})

    def _already_set_up(self) -> bool:
        try:
            res = self._call(self.client.indices.get_index_template, name=f"{self.prefix}-*")
        except self._not_found:
            return False
        stored = {t["name"]: t["index_template"] for t in res.get("index_templates", ())}
        articles = stored.get(self._name("articles"), {})
        text = articles.get("template", {}).get("mappings", {}).get("properties", {}).get(
            "text", {})
        languages = tuple(sorted(text.get("fields", {})))
        if languages and not self.settings.language_subfields:
            return False  # switched off since: the templates must change
        for kind in MAPPINGS:
            want = index_template(self.prefix, kind, languages)
            got = stored.get(self._name(kind), {})
            if any(got.get(key) != want[key]
                   for key in ("index_patterns", "priority", "_meta")) or any(
                got.get("template", {}).get(key) != want["template"].get(key)
                for key in ("mappings", "aliases")
            ):
                return False
        now = datetime.now(UTC)
        names = [monthly_index(self.prefix, "articles", {"published_at": now}),
                 *(self._name(k) for k in MAPPINGS if k not in MONTHLY)]
        if not self._call(self.client.indices.exists, index=",".join(names)):
            return False
        if not self._call(self.client.indices.exists_alias, name=self._name("articles")):
            return False
        self.languages = languages
        self._known_indices.update(names)
        return True

    def _ensure_index(self, index: str) -> None:
        if index in self._known_indices:
            return
        if not self._call(self.client.indices.exists, index=index):
            if not self._set_up:
                # Templates first, or the index would get a guessed (dynamic) mapping.
                self.setup()
                if index in self._known_indices:
                    return
            try:
                self._call(self.client.indices.create, index=index)
            except self._api_error as exc:
                # Another writer created it between our check and our call: that is fine.
                if "resource_already_exists_exception" not in str(exc):
                    raise
        self._known_indices.add(index)

    def _write_index(self, kind: str, doc: Mapping[str, Any]) -> str:
        if kind in MONTHLY:
            return monthly_index(self.prefix, kind, doc)
        return self._name(kind)

    def _locations(self, kind: str, ids: Sequence[str]) -> dict[str, str]:
        """Where documents of a monthly kind already are, so an update whose date moved to
        another month overwrites its copy instead of making a second one."""
        if kind not in MONTHLY:
            return {}
        found: dict[str, str] = {}
        # In pieces: a search may not return more than max_result_window (10,000) hits.
        for start in range(0, len(ids), 1000):
            chunk = list(ids[start:start + 1000])
            body = {"query": {"ids": {"values": chunk}}, "_source": False, "size": len(chunk)}
            res = self._call(self.client.search, index=self._name(kind), body=body,
                             ignore_unavailable=True)
            found.update((hit["_id"], hit["_index"]) for hit in res["hits"]["hits"])
        return found

    def _send_bulk(self, actions: Sequence[BulkAction]) -> list[ItemResult]:
        body: list[Mapping[str, Any]] = []
        for action in actions:
            body.append({"index": {"_index": action.index, "_id": action.doc_id}})
            body.append(action.doc)
        try:
            res = self._call(self.client.bulk, body=body)
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, self._unavailable):
                raise  # the connection is gone: the run fails and is retried
            # The whole request was refused by a busy node: retry all of it.
            return [ItemResult(a.doc_id, 503, str(exc)) for a in actions]
        except self._api_error as exc:
            if self._status(exc) == 429:
                return [ItemResult(a.doc_id, 429, str(exc)) for a in actions]
            raise
        out = []
        for item in res["items"]:
            info = next(iter(item.values()))
            status = int(info.get("status", 0))
            error = ""
            if status >= 300:
                error = json.dumps(info.get("error"), ensure_ascii=False)[:2000]
            out.append(ItemResult(str(info.get("_id")), status, error))
        return out

    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]:
        """Write in chunks of ``bulk_batch_size``; see :func:`bulk_with_retry` for what is
        retried, returned or raised."""
        if not docs:
            return []
        where = self._locations(kind, [doc_id for doc_id, _ in docs])
        actions = [BulkAction(doc_id, where.get(doc_id) or self._write_index(kind, doc), doc)
                   for doc_id, doc in docs]
        for index in sorted({a.index for a in actions}):
            self._ensure_index(index)
        return bulk_with_retry(
            self._send_bulk,
            actions,
            chunk_size=self.settings.bulk_batch_size,
            max_retries=self.settings.max_retries,
            initial_backoff_s=0.5,
            max_backoff_s=30.0,
        )

    def get(self, kind: str, doc_id: str) -> Versioned | None:
        """Real-time get; for monthly kinds an ``ids`` search through the alias, because a get
        by id on an alias over several indices is refused by Elasticsearch."""
        if kind in MONTHLY:
            body = {"query": {"ids": {"values": [doc_id]}}, "seq_no_primary_term": True,
                    "size": 1}
            res = self._call(self.client.search, index=self._name(kind), body=body,
                             ignore_unavailable=True)
            hits = res["hits"]["hits"]
            if not hits:
                return None
            return Versioned(dict(hits[0]["_source"]),
                             (int(hits[0]["_seq_no"]), int(hits[0]["_primary_term"])))
        try:
            res = self._call(self.client.get, index=self._name(kind), id=doc_id)
        except self._not_found:
            return None
        return Versioned(dict(res["_source"]), (int(res["_seq_no"]), int(res["_primary_term"])))

    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool:
        index = self._write_index(kind, doc)
        self._ensure_index(index)
        try:
            self._call(self.client.create, index=index, id=doc_id, body=doc)
        except self._conflict:
            return False
        return True

    def create_many(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> set[str]:
        """Create each document unless its id exists, in one bulk request per chunk; returns
        the ids that were created. Atomic per document, like :meth:`create`, at the cost of
        one round trip instead of one per document."""
        created: set[str] = set()
        chunk_size = self.settings.bulk_batch_size
        for start in range(0, len(docs), chunk_size):
            chunk = docs[start : start + chunk_size]
            body: list[Mapping[str, Any]] = []
            for doc_id, doc in chunk:
                index = self._write_index(kind, doc)
                self._ensure_index(index)
                body.append({"create": {"_index": index, "_id": doc_id}})
                body.append(doc)
            res = self._call(self.client.bulk, body=body)
            for item, (doc_id, doc) in zip(res["items"], chunk, strict=True):
                status = int(next(iter(item.values())).get("status", 0))
                if status in (200, 201):
                    created.add(doc_id)
                elif status != 409 and self.create(kind, doc_id, doc):
                    # Throttled or failed inside the bulk: the single call raises or decides.
                    created.add(doc_id)
        return created

    def replace_if(
        self, kind: str, doc_id: str, doc: JsonDict, version: tuple[int, int]
    ) -> bool:
        try:
            self._call(
                self.client.index,
                index=self._write_index(kind, doc),
                id=doc_id,
                body=doc,
                if_seq_no=version[0],
                if_primary_term=version[1],
            )
        except self._conflict:
            return False
        return True

    def _search(
        self, kind: str, query: JsonDict, size: int, fields: Sequence[str] | None = None
    ) -> list[JsonDict]:
        body: JsonDict = {"query": query, "size": size, "sort": [{"_doc": "asc"}]}
        if fields is not None:
            body["_source"] = list(fields)
        if self.backend == "elasticsearch":
            res = self._call(self.client.search, index=self._name(kind), **body)
        else:
            res = self._call(self.client.search, index=self._name(kind), body=body)
        return [dict(hit["_source"]) for hit in res["hits"]["hits"]]

    def find_terms(
        self,
        kind: str,
        field: str,
        values: Sequence[str],
        size: int = 50,
        fields: Sequence[str] | None = None,
    ) -> list[JsonDict]:
        if not values:
            return []
        return self._search(kind, {"terms": {field: list(values)}}, size, fields)

    def scan(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        terms: Mapping[str, Sequence[str]] | None = None,
        fields: Sequence[str] | None = None,
    ) -> Iterator[JsonDict]:
        """Every document of ``kind`` whose time field is in [since, until), oldest first.

        Pages with ``search_after`` on (time, own id): both servers have it, it needs no
        point-in-time or scroll context, and it is not bounded by ``max_result_window``.
        """
        time_field, id_field = TIME_FIELDS[kind], ID_FIELDS[kind]
        filters: list[JsonDict] = []
        bounds = {op: t.astimezone(UTC).isoformat() for op, t in (("gte", since), ("lt", until))
                  if t is not None}
        if bounds:
            filters.append({"range": {time_field: bounds}})
        filters.extend({"terms": {f: list(v)}} for f, v in (terms or {}).items())
        page = 2000
        body: JsonDict = {
            "query": {"bool": {"filter": filters}},
            "size": page,
            "sort": [{time_field: {"order": "asc"}}, {id_field: {"order": "asc"}}],
        }
        if fields is not None:
            body["_source"] = list(fields)
        while True:
            res = self._call(self.client.search, index=self._name(kind), body=body,
                             ignore_unavailable=True)
            hits = res["hits"]["hits"]
            for hit in hits:
                yield dict(hit["_source"])
            if len(hits) < page:
                return
            body["search_after"] = hits[-1]["sort"]

    def all_docs(self, kind: str, size: int = 10_000) -> list[JsonDict]:
        return self._search(kind, {"match_all": {}}, size)

    def count(self, kind: str) -> int:
        return int(self._call(self.client.count, index=self._name(kind))["count"])

    def refresh(self, kind: str) -> None:
        self._call(self.client.indices.refresh, index=self._name(kind))

    def close(self) -> None:
        self.client.close()


# --- the embedded default -----------------------------------------------------------------


class SqliteStore:
    """A local, single-file document store with the same contract, for the embedded default.

    SQLite rather than an embedded search engine: it ships with Python, is safe across
    processes, and the embedded default needs only keyed writes and term look-ups.
    """

    backend = "embedded"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    @property
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL survives a crash of the process (what the embedded
            # default must survive) and skips an fsync per transaction.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, version INTEGER,"
                " body TEXT, PRIMARY KEY (kind, id))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS terms (kind TEXT, field TEXT, value TEXT, id TEXT)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS terms_idx ON terms (kind, field, value)")
            db.execute("CREATE INDEX IF NOT EXISTS terms_doc_idx ON terms (kind, id)")
            self._local.db = db
        return db

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]  # re-open after unpickling in a worker

    def setup(self) -> None:
        _ = self._db

    def _put(self, kind: str, doc_id: str, doc: JsonDict, version: int) -> None:
        db = self._db
        db.execute(
            "INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)",
            (kind, doc_id, version, json.dumps(doc, ensure_ascii=False, default=str)),
        )
        db.execute("DELETE FROM terms WHERE kind = ? AND id = ?", (kind, doc_id))
        rows = [
            (kind, field, str(value), doc_id)
            for field, value in _keyword_values(doc)
        ]
        db.executemany("INSERT INTO terms VALUES (?, ?, ?, ?)", rows)

    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for doc_id, doc in docs:
                row = db.execute(
                    "SELECT version FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
                ).fetchone()
                self._put(kind, doc_id, doc, (row[0] + 1) if row else 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return []

    def get(self, kind: str, doc_id: str) -> Versioned | None:
        row = self._db.execute(
            "SELECT body, version FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
        ).fetchone()
        return Versioned(json.loads(row[0]), (int(row[1]), 1)) if row else None

    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            exists = db.execute(
                "SELECT 1 FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
            ).fetchone()
            if not exists:
                self._put(kind, doc_id, doc, 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return not exists

    def create_many(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> set[str]:
        return {doc_id for doc_id, doc in docs if self.create(kind, doc_id, doc)}

    def replace_if(
        self, kind: str, doc_id: str, doc: JsonDict, version: tuple[int, int]
    ) -> bool:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT version FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
            ).fetchone()
            ok = row is not None and int(row[0]) == version[0]
            if ok:
                self._put(kind, doc_id, doc, version[0] + 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return ok

    def find_terms(
        self,
        kind: str,
        field: str,
        values: Sequence[str],
        size: int = 50,
        fields: Sequence[str] | None = None,
    ) -> list[JsonDict]:
        if not values:
            return []
        marks = ",".join("?" * len(values))
        rows = self._db.execute(
            f"SELECT DISTINCT d.body FROM terms t JOIN docs d ON d.kind = t.kind AND d.id = t.id"  # noqa: S608  # only placeholders are interpolated
            f" WHERE t.kind = ? AND t.field = ? AND t.value IN ({marks}) LIMIT ?",
            (kind, field, *values, size),
        ).fetchall()
        docs = [json.loads(r[0]) for r in rows]
        if fields is not None:
            docs = [{k: d[k] for k in fields if k in d} for d in docs]
        return docs

    def scan(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        terms: Mapping[str, Sequence[str]] | None = None,
        fields: Sequence[str] | None = None,
    ) -> Iterator[JsonDict]:
        path = "$." + TIME_FIELDS[kind]
        sql = "SELECT body FROM docs WHERE kind = ?"
        args: list[str] = [kind]
        # Stored times are UTC ISO 8601 (models.UtcDatetime), so their first 19 characters
        # compare as text; the exact bounds are applied after parsing.
        if since is not None:
            sql += " AND substr(json_extract(body, ?), 1, 19) >= ?"
            args += [path, f"{since.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"]
        if until is not None:
            sql += " AND substr(json_extract(body, ?), 1, 19) <= ?"
            args += [path, f"{until.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"]
        sql += " ORDER BY json_extract(body, ?), id"
        rows = self._db.execute(sql, (*args, path)).fetchall()
        for (body,) in rows:
            doc = json.loads(body)
            windowed = since is not None or until is not None
            if windowed and not _in_window(doc, TIME_FIELDS[kind], since, until):
                continue
            if terms and not _matches_terms(doc, terms):
                continue
            yield doc if fields is None else {k: doc[k] for k in fields if k in doc}

    def all_docs(self, kind: str, size: int = 10_000) -> list[JsonDict]:
        rows = self._db.execute(
            "SELECT body FROM docs WHERE kind = ? ORDER BY id LIMIT ?", (kind, size)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def count(self, kind: str) -> int:
        return int(
            self._db.execute("SELECT COUNT(*) FROM docs WHERE kind = ?", (kind,)).fetchone()[0]
        )

    def refresh(self, kind: str) -> None:
        """Nothing to do: SQLite reads see committed writes at once."""

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


#: Fields the embedded store can look up by value (the keyword fields the pipeline queries).
_LOOKUP_FIELDS = (
    "story_id", "text_hash", "lsh_bands", "story_keys", "doc_id", "url", "topic_names", "rule",
    "replayed", "pending", "kind", "topic", "alert_id",
)


def _keyword_values(doc: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for field in _LOOKUP_FIELDS:
        value = doc.get(field)
        if isinstance(value, bool):
            # Stored as the search servers render booleans in a terms query.
            yield field, "true" if value else "false"
        elif isinstance(value, list | tuple):
            for v in value:
                yield field, v
        elif value is not None:
            yield field, value


def open_store(settings: SearchSettings, state_dir: Path) -> DocumentStore:
    """The store the settings name; the embedded one lives in ``state_dir``."""
    if settings.backend == "embedded":
        return SqliteStore(state_dir / "documents.sqlite")
    return SearchServerStore(settings)
