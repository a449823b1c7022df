"""The ``newsmon`` command: thin over the library, one module per command group.

Exit status, what a scheduler sees (README, "Exit codes"): 0 everything done; 1 the run
failed (a service down: nothing or part of it committed, safe to re-run); 2 invalid config or
usage; 3 the run went through and every item fetched was handled, but some sources failed or
are disabled (``newsmon sources`` says which); 75 the same job is still running from an
earlier start (newsmon/runlock.py).

=================  ===============================================
module             commands
=================  ===============================================
``config``         ``config check``, ``config docs``
``doctor``         ``doctor``
``search``         ``search setup|export|kibana``
``poll``           ``poll``, ``sources``, ``sources enable ID``
``push``           ``push`` (the WebSub callback)
``run``            ``run [--demo]``
``pipeline``       ``pipeline run``
``deadletters``    ``deadletters [--replay]``
``detection``      ``classify``, ``eval``
``alerts``         ``alerts test|surge|deliver|list``
``report``         ``report``
``serve``          ``serve``, ``serve hash-password``
``feedback``       ``feedback export`` (and ``eval --feedback``)
=================  ===============================================

The work itself is in the library: loading in ``newsmon.ops.loading``, what spans both halves
in ``newsmon.ops.orchestrate``, checks in ``newsmon.ops.doctor``.
"""

from __future__ import annotations

# Each module registers its commands on the app when it is imported.
from newsmon.cli import (  # noqa: F401
    alerts,
    config,
    deadletters,
    detection,
    doctor,
    feedback,
    pipeline,
    poll,
    push,
    report,
    run,
    search,
    serve,
)
from newsmon.cli._common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_SOURCES_FAILED,
    app,
)

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_SOURCES_FAILED", "app", "main"]


def main() -> None:
    app()
