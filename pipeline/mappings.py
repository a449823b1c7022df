"""Index templates for every index newsmon writes: the one definition of field names and types.

`newsmon search setup` applies them; `deploy/search/*.json` is generated from them
(`newsmon search export`) for operators who apply templates with their own tooling.
The mappings use only the standard analyzer, which every server has (the Maven Central
Elasticsearch build has no language analyzers).
"""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]

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

ARTICLE_MAPPING: JsonDict = {
    "dynamic": "strict",
    "properties": {
        "doc_id": _KEYWORD,
        "item_id": _KEYWORD,
        "revision": _KEYWORD,
        "story_id": _KEYWORD,
        "source": _SOURCE,
        "url": _KEYWORD,
        "title": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "text": _TEXT,
        "lang": _KEYWORD,
        "published_at": _DATE,
        "first_seen_at": _DATE,
        "indexed_at": _DATE,
        "text_hash": _KEYWORD,
        # Near-duplicate lookup: LSH band keys are searched, the signature is only read back.
        "lsh_bands": _KEYWORD,
        "minhash": {"type": "long", "index": False, "doc_values": False},
        "topic_names": _KEYWORD,
        "topics": {
            "type": "nested",
            "properties": {
                "topic": _KEYWORD,
                "score": _FLOAT,
                "groups": _KEYWORD,
                "attribute": _KEYWORD,
                "evidence": _EVIDENCE,
            },
        },
        "entities": {"properties": {"kind": _KEYWORD, "name": _KEYWORD}},
    },
}

ALERT_MAPPING: JsonDict = {
    "dynamic": "strict",
    "properties": {
        "alert_id": _KEYWORD,
        "rule": _KEYWORD,
        "topic": _KEYWORD,
        "story_id": _KEYWORD,
        "doc_ids": _KEYWORD,
        "title": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "url": _KEYWORD,
        "score": _FLOAT,
        "source_ids": _KEYWORD,
        "languages": _KEYWORD,
        "source_count": _INT,
        "evidence": _EVIDENCE,
        "created_at": _DATE,
        "updated_at": _DATE,
        "notified": _KEYWORD,
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
    },
}

#: index kind -> mapping. Index names are ``<prefix>-<kind>``.
MAPPINGS: dict[str, JsonDict] = {
    "articles": ARTICLE_MAPPING,
    "alerts": ALERT_MAPPING,
    "dead-letters": DEAD_LETTER_MAPPING,
}


def index_name(prefix: str, kind: str) -> str:
    if kind not in MAPPINGS:
        raise KeyError(f"unknown index kind {kind!r}")
    return f"{prefix}-{kind}"


def index_template(prefix: str, kind: str) -> JsonDict:
    """The composable index template body for one index kind."""
    return {
        "index_patterns": [f"{index_name(prefix, kind)}*"],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": MAPPINGS[kind],
        },
        "_meta": {"managed_by": "newsmon"},
    }
