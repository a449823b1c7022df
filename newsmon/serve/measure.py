"""Feedback as measurement: labelled alerts as evaluation records, and live precision.

An alert an analyst confirmed is a true positive of its rule, one marked false positive a
false one; open and merely acknowledged alerts are not counted. :func:`export_records` gives
the labelled alerts in the JSONL shape ``newsmon eval`` reads (``id``, ``lang``, ``url``,
``title``, ``text``, ``labels``, ``hard_negative``, ``reason``; plus ``rule``, ``topic``,
``source_labels`` and ``feedback`` for the record). :func:`live_precision` counts precision
per rule, language and source label. Pure, apart from :func:`labelled_alerts` and
:func:`article_texts`, which read the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from newsmon.pipeline.store import DocumentStore
from newsmon.serve.feedback import LABELS, status_of

JsonDict = dict[str, Any]

UNLABELLED = "unlabelled"


def source_labels(alert: Mapping[str, Any]) -> list[str]:
    """The source labels of an alert: its ``source_kinds`` (the kinds of its sources, as
    ``alerting.alert_document`` stores them) when present, else the ``kind`` of its
    ``sources`` entries, else ``unlabelled``. Alerts written before sources had labels have
    none of these."""
    raw = alert.get("source_kinds")
    labels = [raw] if isinstance(raw, str) else list(raw or ())
    if not labels:
        labels = [src.get("kind") for src in alert.get("sources") or ()
                  if isinstance(src, Mapping)]
    return sorted({str(x) for x in labels if x}) or [UNLABELLED]


def labelled_alerts(store: DocumentStore, since: datetime | None = None,
                    until: datetime | None = None) -> list[JsonDict]:
    """Story alerts in [since, until) that an analyst labelled confirmed or false positive."""
    return [d for d in store.scan("alerts", since=since, until=until)
            if d.get("kind", "story") == "story" and status_of(d) in LABELS]


def article_texts(store: DocumentStore, alerts: Iterable[Mapping[str, Any]]) -> dict[str, JsonDict]:
    """doc_id -> the stored article, for the first copy of each alert."""
    ids = sorted({str(a["doc_ids"][0]) for a in alerts if a.get("doc_ids")})
    out: dict[str, JsonDict] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for doc in store.find_terms("articles", "doc_id", chunk, size=len(chunk),
                                    fields=["doc_id", "title", "text", "lang", "url"]):
            out[str(doc["doc_id"])] = doc
    return out


def export_record(alert: Mapping[str, Any], article: Mapping[str, Any] | None) -> JsonDict:
    """One labelled alert as an evaluation record. The text is the first copy's article text
    (the evidence snippets when the article is gone), so ``newsmon eval`` can re-run the rules
    on what the analyst judged."""
    fb = alert.get("feedback") or {}
    confirmed = fb.get("status") == "confirmed"
    langs = alert.get("languages") or []
    text = (article or {}).get("text") or "\n".join(
        dict.fromkeys(str(s) for s in alert.get("snippets") or ()))
    return {
        "id": str(alert["alert_id"]),
        "lang": str((article or {}).get("lang") or (langs[0] if langs else "")),
        "url": str(alert.get("url") or (article or {}).get("url") or ""),
        "title": str(alert.get("title") or (article or {}).get("title") or ""),
        "text": text,
        "labels": [str(alert.get("topic"))] if confirmed and alert.get("topic") else [],
        "hard_negative": not confirmed,
        "reason": str(fb.get("reason") or ""),
        "rule": str(alert.get("rule") or ""),
        "topic": str(alert.get("topic") or ""),
        "source_labels": source_labels(alert),
        "feedback": {"status": fb.get("status"), "by": fb.get("by"), "at": fb.get("at")},
    }


def export_records(store: DocumentStore, since: datetime | None = None,
                   until: datetime | None = None) -> list[JsonDict]:
    """Every labelled alert in the window as an evaluation record, oldest first."""
    alerts = labelled_alerts(store, since, until)
    articles = article_texts(store, alerts)
    return [export_record(a, articles.get(str((a.get("doc_ids") or [""])[0]))) for a in alerts]


@dataclass
class Tally:
    """Confirmed and false-positive counts of one group; precision over both."""

    confirmed: int = 0
    false_positive: int = 0

    @property
    def labelled(self) -> int:
        return self.confirmed + self.false_positive

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.labelled if self.labelled else None

    def as_json(self) -> JsonDict:
        p = self.precision
        return {"confirmed": self.confirmed, "false_positive": self.false_positive,
                "labelled": self.labelled, "precision": None if p is None else round(p, 4)}


@dataclass
class LivePrecision:
    """Live precision overall and per rule, language and source label."""

    overall: Tally = field(default_factory=Tally)
    by: dict[str, dict[str, Tally]] = field(
        default_factory=lambda: {"rule": {}, "language": {}, "source_label": {}})

    def to_json(self) -> JsonDict:
        return {"overall": self.overall.as_json(),
                **{dim: {k: t.as_json() for k, t in sorted(groups.items())}
                   for dim, groups in self.by.items()}}

    def format_text(self) -> str:
        lines = [f"live precision: {_fmt(self.overall)}"]
        for dim, groups in self.by.items():
            lines.append(f"by {dim.replace('_', ' ')}:")
            lines.extend(f"  {key:<28} {_fmt(t)}" for key, t in sorted(groups.items()))
            if not groups:
                lines.append("  (no labelled alerts)")
        return "\n".join(lines)


def _fmt(t: Tally) -> str:
    p = t.precision
    shown = "   n/a" if p is None else f"{p:6.1%}"
    return f"{shown}  ({t.confirmed} confirmed, {t.false_positive} false positive)"


def _language(record: Mapping[str, Any]) -> Sequence[str]:
    langs = record.get("languages")
    if langs is None:
        langs = [record["lang"]] if record.get("lang") else []
    return [str(x) for x in langs] or ["und"]


def live_precision(records: Iterable[Mapping[str, Any]]) -> LivePrecision:
    """Precision over labelled alerts or exported records (both carry ``feedback.status``,
    ``rule``, and ``languages`` or ``lang``). An alert in two languages or with two source
    labels counts once in each group."""
    out = LivePrecision()
    for rec in records:
        status = (rec.get("feedback") or {}).get("status")
        if status not in LABELS:
            continue
        labels = rec.get("source_labels") or source_labels(rec)
        keys = {"rule": [str(rec.get("rule") or "?")], "language": _language(rec),
                "source_label": [str(x) for x in labels]}
        for tally in [out.overall, *(out.by[dim].setdefault(k, Tally())
                                     for dim, ks in keys.items() for k in ks)]:
            if status == "confirmed":
                tally.confirmed += 1
            else:
                tally.false_positive += 1
    return out
