"""Mutes set from the alert inbox (``newsmon serve``): a muted story or source stops notifying.

A mute lives on the alert it was set from (``feedback.mutes``, with who, when and until when),
and its key is copied to the alert's top-level keyword field ``muted_keys``, so that delivery
finds every mute that could apply to an alert with one terms look-up that both the search
servers and the embedded store answer. Keys: ``story:<story_id>`` and ``source:<source_id>``.

:func:`is_muted` is pure; :meth:`MuteBook.reason` is the one call delivery makes before
sending.

A source mute silences an alert only when *every* source of the alert is muted: muting a noisy
source must not hide a story that other sources corroborate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from newsmon.pipeline.store import DocumentStore, parse_time

MuteScope = Literal["story", "source"]

#: The top-level keyword field on an alert that lists the keys of the mutes set on it.
MUTED_KEYS_FIELD = "muted_keys"


@dataclass(frozen=True)
class Mute:
    """One mute: ``scope`` story or source, ``target`` its id, in force until ``until``."""

    scope: MuteScope
    target: str
    until: datetime
    by: str = ""

    @property
    def key(self) -> str:
        return mute_key(self.scope, self.target)


def mute_key(scope: MuteScope, target: str) -> str:
    """The key a mute of ``target`` is looked up by."""
    return f"{scope}:{target}"


def keys_for(alert: Mapping[str, Any]) -> list[str]:
    """Every mute key that could silence ``alert``: its story's and each of its sources'."""
    keys = [mute_key("story", str(alert["story_id"]))] if alert.get("story_id") else []
    keys.extend(mute_key("source", str(s)) for s in alert.get("source_ids") or ())
    return keys


def mutes_on(doc: Mapping[str, Any]) -> list[Mute]:
    """The mutes recorded on one alert document (``feedback.mutes``); a malformed entry is
    skipped, it cannot silence anything."""
    feedback = doc.get("feedback") or {}
    out = []
    for entry in feedback.get("mutes") or ():
        try:
            scope = entry["scope"]
            if scope not in ("story", "source"):
                continue
            out.append(Mute(scope, str(entry["target"]), parse_time(entry["until"]),
                            str(entry.get("by", ""))))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def is_muted(alert: Mapping[str, Any], mutes: Iterable[Mute], now: datetime) -> Mute | None:
    """The mute that silences ``alert`` at ``now``, or None. Its story muted, or every one of
    its sources muted (then the source mute that ends first is returned)."""
    active = [m for m in mutes if m.until > now]
    story = alert.get("story_id")
    for m in active:
        if m.scope == "story" and story and m.target == str(story):
            return m
    sources = [str(s) for s in alert.get("source_ids") or ()]
    by_source = {m.target: m for m in sorted(active, key=lambda m: m.until, reverse=True)
                 if m.scope == "source"}
    if sources and all(s in by_source for s in sources):
        return min((by_source[s] for s in sources), key=lambda m: m.until)
    return None


class MuteBook:
    """The mutes delivery checks, looked up by key and kept for ``refresh_s`` (on the
    ``clock``'s seconds): a run or a stream worker reads each key's mutes once per interval,
    and a batch of alerts in one query (:meth:`load`), instead of one query per alert. A mute
    set from the inbox while a stream runs silences delivery at the latest ``refresh_s``
    later."""

    def __init__(self, store: DocumentStore, *, refresh_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.clock = clock
        #: mute key -> (when it was read, the mutes recorded under it then)
        self._read: dict[str, tuple[float, list[Mute]]] = {}

    def load(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """Read, in one look-up per 1,000 keys, the mutes of every key of ``alerts`` that
        was not read in the last ``refresh_s``."""
        t = self.clock()
        self._read = {k: v for k, v in self._read.items() if t - v[0] < self.refresh_s}
        stale = sorted({k for a in alerts for k in keys_for(a) if k not in self._read})
        found: dict[str, list[Mute]] = {k: [] for k in stale}
        for start in range(0, len(stale), 1000):
            chunk = stale[start:start + 1000]
            for doc in self.store.scan("alerts", terms={MUTED_KEYS_FIELD: chunk},
                                       fields=["feedback"]):
                for m in mutes_on(doc):
                    if m.key in found:
                        found[m.key].append(m)
        self._read.update((k, (t, mutes)) for k, mutes in found.items())

    def reason(self, alert: Mapping[str, Any], now: datetime) -> str | None:
        """Why ``alert`` must not notify now ("muted: story ... until ... by ..."), or None."""
        self.load([alert])
        mute = is_muted(alert, [m for k in keys_for(alert) for m in self._read[k][1]], now)
        if mute is None:
            return None
        by = f" by {mute.by}" if mute.by else ""
        return f"muted: {mute.scope} {mute.target} until {mute.until.isoformat()}{by}"
