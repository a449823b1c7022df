"""The exit statuses a scheduler acts on (README, "Exit codes"): one list for the commands
(``newsmon/cli``) and the checks that compute them (``newsmon/ops/doctor.py``)."""

from __future__ import annotations

from collections.abc import Iterable

#: The run failed before its end (a service down); what was not committed is done again by
#: the next run. For ``doctor``: a service or endpoint is not usable.
EXIT_FAILED = 1
EXIT_CONFIG = 2
#: The run went through, every item fetched was published and processed, but some sources
#: failed or are disabled: nothing to re-run, something to look at (`newsmon sources`).
EXIT_SOURCES_FAILED = 3
#: ``sources`` and ``doctor``: every enabled source is failing or disabled (the network, a
#: proxy, the state directory of another installation?), nothing is being collected.
EXIT_ALL_SOURCES_FAILED = 4

#: Source health states (connectors/health.py) that count as failed: the poller tried and
#: failed, or gave up. "never-polled" and "off" (`enabled: false`) are not failures.
FAILED_STATES = frozenset({"failing", "disabled"})
#: States of sources that are meant to be polled.
_ENABLED_STATES = frozenset({"ok", "never-polled", "failing", "disabled"})


def sources_exit(states: Iterable[str]) -> int:
    """0 when no enabled source has failed, 3 when some have, 4 when every one has."""
    enabled = [s for s in states if s in _ENABLED_STATES]
    failed = sum(1 for s in enabled if s in FAILED_STATES)
    if not failed:
        return 0
    return EXIT_ALL_SOURCES_FAILED if failed == len(enabled) else EXIT_SOURCES_FAILED
