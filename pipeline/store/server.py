"""Elasticsearch and OpenSearch behind the store contract (the client itself: client.py)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from newsmon.config import SearchSettings
from newsmon.languages import LANGUAGE_ANALYZERS
from newsmon.pipeline.store.base import DocumentStore, JsonDict, Versioned
from newsmon.pipeline.store.bulk import (
    BulkAction,
    BulkFailure,
    ItemResult,
    StoreSetupError,
    StoreUnavailable,
    bulk_with_retry,
)
from newsmon.pipeline.store.client import (
    RECOVERING_STATUSES,
    access_denied,
    connect,
    connection_problem,
)
from newsmon.pipeline.store.mappings import (
    ID_FIELDS,
    MAPPINGS,
    MONTHLY,
    TIME_FIELDS,
    index_name,
    index_template,
    kind_mapping,
    monthly_index,
    replicas_for,
)
from newsmon.urls import redacted_url

log = logging.getLogger(__name__)


class SearchServerStore(DocumentStore):
    """Elasticsearch (``elasticsearch`` client) or OpenSearch (``opensearch-py``).

    The two clients share the bulk helper's shape and most call signatures; where they differ
    (keyword names of the 8.x client versus ``body=``) this class says so. New calls pass
    ``body=``, which both accept.
    """

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings
        self.backend: str = settings.backend
        self.prefix = settings.index_prefix
        client = connect(settings)
        self.client: Any = client.client
        self._unavailable = client.unavailable
        self._conflict = client.conflict
        self._not_found = client.not_found
        self._api_error = client.api_error
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
                f"{self.backend} at {redacted_url(self.settings.url)}: {connection_problem(exc)}"
            ) from exc
        except self._api_error as exc:
            status = self._status(exc)
            if status in (401, 403):
                raise StoreUnavailable(
                    f"{self.backend} at {redacted_url(self.settings.url)}: "
                    f"{access_denied(status, exc)}"
                ) from exc
            if status is not None and status >= 500:
                raise StoreUnavailable(
                    f"{self.backend} at {redacted_url(self.settings.url)}: HTTP {status}: {exc}"
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

    def delete(self, kind: str, doc_id: str) -> bool:
        # Monthly kinds would need the document's own index (a delete by id through the alias
        # is refused): only the single-index kinds are ever deleted.
        if kind in MONTHLY:
            raise ValueError(f"delete is for single-index kinds, not {kind}")
        try:
            self._call(self.client.delete, index=self._name(kind), id=doc_id)
        except self._not_found:
            return False
        return True

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
        self, kind: str, query: JsonDict, size: int, fields: Sequence[str] | None = None,
        newest_by: str | None = None,
    ) -> list[JsonDict]:
        sort: list[JsonDict] = [{"_doc": "asc"}]
        if newest_by is not None:
            sort.insert(0, {newest_by: {"order": "desc", "unmapped_type": "date"}})
        body: JsonDict = {"query": query, "size": size, "sort": sort}
        if fields is not None:
            body["_source"] = list(fields)
        if self.backend == "elasticsearch":
            res = self._call(self.client.search, index=self._name(kind), **body)
        else:
            res = self._call(self.client.search, index=self._name(kind), body=body)
        return [dict(hit["_source"]) for hit in res["hits"]["hits"]]

    def _find_terms(self, kind: str, field: str, values: Sequence[str], size: int,
                    fields: Sequence[str] | None, newest_by: str | None) -> list[JsonDict]:
        return self._search(kind, {"terms": {field: list(values)}}, size, fields, newest_by)

    def _scan(self, kind: str, since: datetime | None, until: datetime | None,
              terms: Mapping[str, Sequence[str]],
              fields: Sequence[str] | None) -> Iterator[JsonDict]:
        """Pages with ``search_after`` on (time, own id): both servers have it, it needs no
        point-in-time or scroll context, and it is not bounded by ``max_result_window``.
        """
        time_field, id_field = TIME_FIELDS[kind], ID_FIELDS[kind]
        filters: list[JsonDict] = []
        bounds = {op: t.astimezone(UTC).isoformat() for op, t in (("gte", since), ("lt", until))
                  if t is not None}
        if bounds:
            filters.append({"range": {time_field: bounds}})
        filters.extend({"terms": {f: list(v)}} for f, v in terms.items())
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
