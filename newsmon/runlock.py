"""One run at a time per job and state directory.

cron starts the next ``poll --once`` or ``pipeline run`` whether or not the previous one has
finished (slow feeds, a search server that is catching up). Two batch runs would snapshot the
same Kafka offsets and process, alert and notify the same records twice; two pollers would
publish the same new items twice. Kubernetes CronJobs (``concurrencyPolicy: Forbid``) and
systemd timers prevent the overlap themselves; plain cron does not, so every scheduled job
takes an exclusive lock on ``<state_dir>/<job>.lock`` first and a run that finds it taken
exits with :data:`EXIT_LOCKED` (75, ``EX_TEMPFAIL``: "try again later") without doing
anything.

Why ``fcntl.flock`` and not a lock-file library: the kernel releases the lock when the process
dies, even by ``kill -9``, so a crashed run never leaves a stale lock behind, and the file
can keep the holder's pid and start time for the message. (flock is advisory and local:
state directories on NFS, or runs on different machines, are not covered; there the
scheduler must prevent overlap.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

#: Exit status of a run that found its job already running (sysexits.h EX_TEMPFAIL).
EXIT_LOCKED = 75


class RunLocked(RuntimeError):
    """Another run of the same job holds the lock."""


@contextmanager
def run_lock(state_dir: Path, job: str) -> Iterator[Path]:
    """Hold ``<state_dir>/<job>.lock`` for the block; raise :class:`RunLocked` at once if
    another process holds it."""
    import fcntl  # POSIX only; imported here so the rest of newsmon imports anywhere

    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / f"{job}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise RunLocked(
                f"another `newsmon {job}` run is still going ({holder}; lock {path}): this run "
                "did nothing and exits; the next scheduled run will pick up its work"
            ) from None
        os.ftruncate(fd, 0)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} since {started}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
