"""Index templates for every index newsmon writes: the one definition of field names and types.

`newsmon search setup` applies them; `deploy/search/*.json` is generated from them
(`newsmon search export`) for operators who apply templates with their own tooling.

Index layout (``<prefix>`` is ``search.index_prefix``):

* articles: monthly indices ``<prefix>-articles-YYYY.MM`` behind the alias
  ``<prefix>-articles``. The month comes from ``published_at``, so a document's index is a
  function of its content like its ``_id``: a re-write lands on the same copy. Reads go
  through the alias; writes name the monthly index.
* alerts, dead letters, source health and alert throttle windows: one index each,
  ``<prefix>-<kind>``.

Text fields are analyzed with the standard analyzer, which every server has (the Maven Central
Elasticsearch build has no language analyzers); ``title`` and ``text`` get per-language
subfields (``text.de`` with the ``german`` analyzer, ...) only for the analyzers the server
has, which ``setup`` finds out by asking it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from newsmon.languages import LANGUAGE_ANALYZERS

JsonDict = dict[str, Any]

#: Articles with neither ``published_at`` nor ``first_seen_at`` (never the pipeline's own)
#: still need a deterministic home.
UNDATED = "undated"

_KEYWORD: JsonDict = {"type": "keyword"}
_DATE: JsonDict = {"type": "date"}
_TEXT: JsonDict = {"type": "text"}
_FLOAT: JsonDict = {"type": "float"}
_INT: JsonDict = {"type": "integer"}

_SOURCE: JsonDict = {
    "properties": {
        "id": _KEYWORD,
        "type": _KEYWORD,
        "name": {"type": "text", "fields": {"raw": _KEYWORD}},
        "lang": _KEYWORD,
        "country": _KEYWORD,
        # Labels (connectors/base.py SourceBase): a models.SourceKind value, the owner.
        "kind": _KEYWORD,
        "owner": _KEYWORD,
    }
}

_EVIDENCE: JsonDict = {
    "type": "nested",
    "properties": {
        "group": _KEYWORD,
        "term": _KEYWORD,
        "start": _INT,
        "end": _INT,
        "snippet": _TEXT,
    },
}

_TITLE: JsonDict = {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}}

ARTICLE_MAPPING: JsonDict = {
    "dynamic": "strict",
    "properties": {
        "doc_id": _KEYWORD,
        "item_id": _KEYWORD,
        "revision": _KEYWORD,
        "story_id": _KEYWORD,
        "source": _SOURCE,
        "url": _KEYWORD,
        "title": _TITLE,
        "text": _TEXT,
        "lang": _KEYWORD,
        "published_at": _DATE,
        "first_seen_at": _DATE,
        "indexed_at": _DATE,
        "text_hash": _KEYWORD,
        # Near-duplicate lookup: LSH band keys are searched, the signature is only read back.
        "lsh_bands": _KEYWORD,
        "minhash": {"type": "long", "index": False, "doc_values": False},
        # Story matching across languages (story_match): blocking keys are searched, the
        # features are only read back. Documents written before them have neither.
        "story_keys": _KEYWORD,
        "story_features": {"type": "object", "enabled": False},
        "topic_names": _KEYWORD,
        "topics": {
            "type": "nested",
            "properties": {
                "topic": _KEYWORD,
                "score": _FLOAT,
                "groups": _KEYWORD,
                "attribute": _KEYWORD,
                "review": {"type": "boolean"},
                "evidence": _EVIDENCE,
            },
        },
        "entities": {"properties": {"kind": _KEYWORD, "name": _KEYWORD}},
        # The source's display name and labels flat, for Kibana filters and the report
        # (stages/store.article_document); documents written before them have none.
        "source_name": _KEYWORD,
        "source_kind": _KEYWORD,
        "source_country": _KEYWORD,
        "source_owner": _KEYWORD,
        # poll or push: how the item reached newsmon (time-to-alert is measured per path).
        "fed_by": _KEYWORD,
    },
}

_REASON: JsonDict = {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}}

_FEEDBACK: JsonDict = {
    "properties": {
        # confirmed, false_positive or acknowledged; absent: open.
        "status": _KEYWORD,
        "reason": _REASON,
        "by": _KEYWORD,
        "at": _DATE,
        "mutes": {"properties": {"scope": _KEYWORD, "target": _KEYWORD, "until": _DATE,
                                 "by": _KEYWORD, "at": _DATE}},
        "history": {"properties": {"action": _KEYWORD, "reason": _REASON, "by": _KEYWORD,
                                   "at": _DATE, "target": _KEYWORD, "until": _DATE}},
    }
}

ALERT_MAPPING: JsonDict = {
    "dynamic": "strict",
    "properties": {
        "alert_id": _KEYWORD,
        "rule": _KEYWORD,
        "topic": _KEYWORD,
        "story_id": _KEYWORD,
        "doc_ids": _KEYWORD,
        "title": _TITLE,
        "url": _KEYWORD,
        "score": _FLOAT,
        "source_ids": _KEYWORD,
        "languages": _KEYWORD,
        "source_count": _INT,
        # Who reports the story (alerts/sources.py): each source with its labels, the kinds
        # and countries flat for filters, and the human line ("2 wires (GB, FR), ...").
        "sources": _SOURCE,
        "source_kinds": _KEYWORD,
        "source_countries": _KEYWORD,
        "sources_line": {"type": "text", "fields": {"raw": {"type": "keyword",
                                                             "ignore_above": 512}}},
        # Corroboration (alerts/sources.py): met or not, and how (required by the rule or
        # not, the criterion, how many independent sources, since when).
        "corroborated": {"type": "boolean"},
        "corroboration": {
            "properties": {
                "required": {"type": "boolean"},
                "min_sources": _INT,
                "distinct": _KEYWORD,
                "independent": _INT,
                "corroborated_at": _DATE,
            }
        },
        "evidence": _EVIDENCE,
        # The evidence snippets (surges: the top stories' titles) flat, for dashboards and
        # Discover columns, which show nested fields poorly.
        "snippets": _TEXT,
        "created_at": _DATE,
        "updated_at": _DATE,
        # Time-to-alert (docs/alerts.md): the first copy's publication, first sight by a
        # connector, indexing and how it came (poll or push); ``notified_at`` the first
        # delivery sent, each delivery's own in ``deliveries``.
        "published_at": _DATE,
        "first_seen_at": _DATE,
        "indexed_at": _DATE,
        "notified_at": _DATE,
        "fed_by": _KEYWORD,
        # story (one per rule and story) or surge (one per rule and interval).
        "kind": _KEYWORD,
        # Delivery state: channels reached, channels still owed (new or failed), channels whose
        # last attempt failed, channels held back by the rule's throttle; one entry per attempt.
        "notified": _KEYWORD,
        "pending": _KEYWORD,
        "failed": _KEYWORD,
        "throttled": _KEYWORD,
        # channel@version: the story version each channel last got (a newer one owes it an
        # alert.updated).
        "sent_versions": _KEYWORD,
        "lease_until": _DATE,
        "deliveries": {
            "type": "nested",
            "properties": {
                "channel": _KEYWORD,
                "status": _KEYWORD,
                "at": _DATE,
                "attempts": _INT,
                "event": _KEYWORD,
                "version": _INT,
                "delivery_id": _KEYWORD,
                "retry_at": _DATE,
                "notified_at": _DATE,
                "error": {"type": "text", "fields": {"raw": {"type": "keyword",
                                                              "ignore_above": 256}}},
            },
        },
        # Surge alerts: the interval's count against its baseline, and its biggest stories.
        "interval_start": _DATE,
        "interval_end": _DATE,
        "count": _INT,
        "baseline_mean": _FLOAT,
        "baseline_std": _FLOAT,
        "expected_max": _FLOAT,
        "top_stories": {
            "properties": {
                "story_id": _KEYWORD,
                "title": {"type": "text", "index": False},
                "url": _KEYWORD,
                "count": _INT,
            }
        },
        # The analysts' answer from the inbox (newsmon/serve/feedback.py): the current label
        # with who set it and when, the mutes set from this alert, and every action taken.
        "feedback": _FEEDBACK,
        # Keys of the mutes on this alert (story:<id>, source:<id>): delivery's look-up
        # (pipeline/alerts/mutes.py).
        "muted_keys": _KEYWORD,
    },
}

DEAD_LETTER_MAPPING: JsonDict = {
    "dynamic": "strict",
    "properties": {
        "dl_id": _KEYWORD,
        "stage": _KEYWORD,
        "error": _TEXT,
        "source_id": _KEYWORD,
        "payload": {"type": "text", "index": False},
        "created_at": _DATE,
        "replayed": {"type": "boolean"},
        # `newsmon deadletters discard`: kept, but out of listing and replay.
        "discarded_at": _DATE,
        "discard_reason": _TEXT,
    },
}

SOURCE_HEALTH_MAPPING: JsonDict = {
    "dynamic": "strict",
    "properties": {
        "source_id": _KEYWORD,
        "type": _KEYWORD,
        "name": {"type": "text", "fields": {"raw": _KEYWORD}},
        "lang": _KEYWORD,
        "country": _KEYWORD,
        "location": _KEYWORD,
        "enabled": {"type": "boolean"},
        "interval_s": _INT,
        # ok, failing, disabled, never-polled, off
        "state": _KEYWORD,
        "last_poll_at": _DATE,
        "last_success_at": _DATE,
        "last_error": _TEXT,
        "last_error_kind": _KEYWORD,
        "last_error_at": _DATE,
        "consecutive_failures": _INT,
        "hard_failures": _INT,
        "items_seen": _INT,
        "parse_errors": _INT,
        "last_new_item_at": _DATE,
        "last_status": _INT,
        "next_due_at": _DATE,
        "disabled": {"type": "boolean"},
        "disabled_reason": _TEXT,
        "checked_at": _DATE,
    },
}

#: One document per rule, channel and throttle window: created atomically by the delivery
#: that may use the window; later alerts in the window are recorded on it as held back.
ALERT_THROTTLE_MAPPING: JsonDict = {
    "dynamic": "strict",
    "properties": {
        "key": _KEYWORD,
        "rule": _KEYWORD,
        "channel": _KEYWORD,
        "window_start": _DATE,
        "window_end": _DATE,
        "alert_id": _KEYWORD,
        "held_back": _KEYWORD,
    },
}

#: index kind -> mapping. Index names are ``<prefix>-<kind>`` (for articles: the alias).
MAPPINGS: dict[str, JsonDict] = {
    "articles": ARTICLE_MAPPING,
    "alerts": ALERT_MAPPING,
    "dead-letters": DEAD_LETTER_MAPPING,
    "source-health": SOURCE_HEALTH_MAPPING,
    "alert-throttle": ALERT_THROTTLE_MAPPING,
}

#: Kinds stored in monthly indices behind an alias named like the kind.
MONTHLY = frozenset({"articles"})

#: The field holding each kind's own id (a stable sort key for paging) and its time field.
ID_FIELDS: dict[str, str] = {
    "articles": "doc_id", "alerts": "alert_id", "dead-letters": "dl_id",
    "source-health": "source_id", "alert-throttle": "key",
}
TIME_FIELDS: dict[str, str] = {
    "articles": "published_at", "alerts": "created_at", "dead-letters": "created_at",
    "source-health": "checked_at", "alert-throttle": "window_start",
}


def index_name(prefix: str, kind: str) -> str:
    """The name reads use: the index itself, or for monthly kinds the alias over them."""
    if kind not in MAPPINGS:
        raise KeyError(f"unknown index kind {kind!r}")
    return f"{prefix}-{kind}"


def monthly_index(prefix: str, kind: str, doc: Mapping[str, Any]) -> str:
    """The concrete index a document of a monthly kind belongs in: by ``published_at``
    (else ``first_seen_at``), so the same document always lands in the same index."""
    stamp = doc.get("published_at") or doc.get("first_seen_at")
    if isinstance(stamp, datetime):
        month = f"{stamp:%Y.%m}"
    elif isinstance(stamp, str) and len(stamp) >= 7 and stamp[4] == "-":
        # ISO 8601 as the documents carry it, already in UTC (models.UtcDatetime).
        month = f"{stamp[:4]}.{stamp[5:7]}"
    else:
        month = UNDATED
    return f"{index_name(prefix, kind)}-{month}"


def kind_mapping(kind: str, languages: Sequence[str] = ()) -> JsonDict:
    """The mapping of one kind; for articles with subfields for the given languages."""
    mapping = MAPPINGS[kind]
    if kind != "articles" or not languages:
        return mapping
    subfields = {lang: {"type": "text", "analyzer": LANGUAGE_ANALYZERS[lang]}
                 for lang in sorted(languages)}
    props = dict(mapping["properties"])
    props["title"] = {**_TITLE, "fields": {**_TITLE["fields"], **subfields}}
    props["text"] = {**_TEXT, "fields": subfields}
    return {**mapping, "properties": props}


def replicas_for(data_nodes: int) -> int:
    """Replicas per index for a server of ``data_nodes`` data nodes: none on one node (a
    replica could never be placed and the indices would stay yellow), one on a cluster, so
    that any one node may be lost with its shards and nothing acknowledged is gone. More
    would cost a full copy of every write per replica for a fault few clusters of this size
    plan for. One primary shard per index either way: an index of newsmon's size is
    searched fastest in one shard, and monthly indices spread over the nodes by themselves.
    """
    return 1 if data_nodes > 1 else 0


#: How soon a written article becomes searchable. The server's default (1 s, and none at all
#: on a shard nobody searched for 30 s) was the largest part of stream mode's produce ->
#: searchable latency (issue 14, docs/benchmarks.md); refreshing one small shard five times a
#: second costs little, and a refresh with nothing new written is a no-op.
ARTICLES_REFRESH_INTERVAL = "200ms"


def index_template(prefix: str, kind: str, languages: Sequence[str] = (),
                   replicas: int = 0) -> JsonDict:
    """The composable index template body for one index kind, with ``replicas`` replicas
    (``replicas_for``).

    Monthly kinds match ``<alias>-*`` and carry the alias, so every monthly index the server
    creates (on the first write of a month) joins it. Only APIs Elasticsearch 8, 9 and
    OpenSearch 2 share are used.
    """
    name = index_name(prefix, kind)
    template: JsonDict = {
        "settings": {"number_of_shards": 1, "number_of_replicas": replicas},
        "mappings": kind_mapping(kind, languages),
    }
    if kind in MONTHLY:
        template["aliases"] = {name: {}}
    if kind == "articles":
        template["settings"]["refresh_interval"] = ARTICLES_REFRESH_INTERVAL
    return {
        "index_patterns": [f"{name}-*" if kind in MONTHLY else name],
        "priority": 200,
        "template": template,
        "_meta": {"managed_by": "newsmon"},
    }


def field_paths(mapping: Mapping[str, Any], parent: str = "") -> Iterator[tuple[str, str]]:
    """Every field of a mapping as (dotted path, type), subfields (``title.raw``) included."""
    for name, spec in mapping.get("properties", {}).items():
        path = f"{parent}{name}"
        yield path, str(spec.get("type", "object"))
        for sub, sub_spec in spec.get("fields", {}).items():
            yield f"{path}.{sub}", str(sub_spec.get("type", "text"))
        if "properties" in spec:
            yield from field_paths(spec, path + ".")
