"""The analysts' actions on an alert, recorded on the alert document (``feedback``).

Actions: ``confirm``, ``false_positive`` (a reason required), ``acknowledge``, ``mute_story``
and ``mute_source`` (for N hours). :func:`apply_action` is pure: the document with the action
applied and appended to ``feedback.history`` with who and when. :func:`record_action` writes
it with a version-guarded replace, so two analysts acting at once both land.

Labels: confirm and false_positive set the alert's label (the last one wins, the history keeps
both); acknowledge marks an open alert as seen without labelling it and never overwrites a
label. Mutes leave the label alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from newsmon.pipeline.alerts.mutes import MUTED_KEYS_FIELD, MuteScope, mute_key
from newsmon.pipeline.store import DocumentStore

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

Action = Literal["confirm", "false_positive", "acknowledge", "mute_story", "mute_source"]
ACTIONS: tuple[str, ...] = get_args(Action)

#: The label each labelling action sets.
STATUS_OF: dict[str, str] = {"confirm": "confirmed", "false_positive": "false_positive",
                             "acknowledge": "acknowledged"}
#: Labels that count for precision: an analyst said whether the alert was right.
LABELS = ("confirmed", "false_positive")

#: Bounds on a mute: at least an hour, at most a year.
MAX_MUTE_HOURS = 24 * 365
#: A story mute without a duration lasts this long: stories end, mutes should too.
DEFAULT_STORY_MUTE_HOURS = 24 * 30
MAX_HISTORY = 200
MAX_REASON = 500


class ActionError(ValueError):
    """An action that cannot be applied (unknown, missing reason, bad hours or source)."""


@dataclass(frozen=True)
class Request:
    """One action as asked for: who, what, and its arguments."""

    action: str
    by: str
    reason: str = ""
    hours: float | None = None
    source_id: str = ""


def apply_action(doc: Mapping[str, Any], req: Request, now: datetime) -> JsonDict:
    """``doc`` with ``req`` applied at ``now``; raises :class:`ActionError` on a bad request."""
    if req.action not in ACTIONS:
        raise ActionError(f"unknown action {req.action!r} (one of {', '.join(ACTIONS)})")
    if not req.by:
        raise ActionError("an action needs the analyst's name")
    reason = " ".join(req.reason.split())[:MAX_REASON]
    if req.action == "false_positive" and not reason:
        raise ActionError("a false positive needs a reason")
    out = dict(doc)
    feedback = dict(doc.get("feedback") or {})
    entry: JsonDict = {"action": req.action, "by": req.by, "at": now.isoformat()}
    if reason:
        entry["reason"] = reason
    if req.action in STATUS_OF:
        status = STATUS_OF[req.action]
        if not (status == "acknowledged" and feedback.get("status") in LABELS):
            feedback.update(status=status, by=req.by, at=now.isoformat())
            if reason or status != "acknowledged":
                feedback["reason"] = reason
    else:
        scope: MuteScope = "story" if req.action == "mute_story" else "source"
        target = _mute_target(doc, scope, req.source_id)
        hours = _mute_hours(req.hours, scope)
        until = (now + timedelta(hours=hours)).isoformat()
        mutes = [m for m in feedback.get("mutes") or ()
                 if (m.get("scope"), m.get("target")) != (scope, target)]
        mutes.append({"scope": scope, "target": target, "until": until, "by": req.by,
                      "at": now.isoformat()})
        feedback["mutes"] = mutes
        out[MUTED_KEYS_FIELD] = sorted({*(doc.get(MUTED_KEYS_FIELD) or ()),
                                        mute_key(scope, target)})
        entry.update(target=target, until=until)
    feedback["history"] = [*(feedback.get("history") or ()), entry][-MAX_HISTORY:]
    out["feedback"] = feedback
    return out


def _mute_target(doc: Mapping[str, Any], scope: MuteScope, source_id: str) -> str:
    if scope == "story":
        story = doc.get("story_id")
        if not story:
            raise ActionError("this alert has no story to mute")
        return str(story)
    sources = [str(s) for s in doc.get("source_ids") or ()]
    if source_id not in sources:
        raise ActionError(f"source {source_id!r} is not a source of this alert")
    return source_id


def _mute_hours(hours: float | None, scope: MuteScope) -> float:
    if hours is None:
        if scope == "story":
            return DEFAULT_STORY_MUTE_HOURS
        raise ActionError("muting a source needs a number of hours")
    if not 1 <= hours <= MAX_MUTE_HOURS:
        raise ActionError(f"mute hours must be between 1 and {MAX_MUTE_HOURS}")
    return hours


def record_action(store: DocumentStore, alert_id: str, req: Request, now: datetime) -> JsonDict:
    """Apply ``req`` to the stored alert and write it back; returns the new document. Raises
    KeyError for an unknown alert, :class:`ActionError` for a bad request."""
    for _ in range(20):
        current = store.get("alerts", alert_id)
        if current is None:
            raise KeyError(alert_id)
        doc = apply_action(current.source, req, now)
        if store.replace_if("alerts", alert_id, doc, current.version):
            # The inbox lists by search: the analyst's next page shows what was just done.
            store.refresh("alerts")
            log.info("alert %s: %s by %s at %s%s", alert_id, req.action, req.by,
                     now.isoformat(), f" ({doc['feedback']['history'][-1].get('reason')})"
                     if req.reason else "")
            return doc
    raise RuntimeError(f"alert {alert_id}: could not record {req.action} (too many updates)")


def status_of(doc: Mapping[str, Any]) -> str:
    """The alert's label: confirmed, false_positive, acknowledged, or open."""
    return str((doc.get("feedback") or {}).get("status") or "open")
