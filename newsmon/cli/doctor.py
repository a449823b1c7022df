"""``newsmon doctor``."""

from __future__ import annotations

import typer

from newsmon.cli._common import ConfigOpt, app


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check config, state, sources, Kafka, the search server and the alert channels.

    One line per check; a problem's line says what to do. Exit status 0 when everything works
    (warnings allowed), 1 when a service or endpoint is not usable, 2 when the config is invalid.
    """
    from newsmon.ops import doctor as checks

    findings = checks.run_checks(config)
    for finding in findings:
        typer.echo(finding.line())
    status = checks.exit_status(findings)
    problems = sum(1 for f in findings if f.status == "fail")
    typer.echo("doctor: all checks passed" if status == 0 else
               f"doctor: {problems} problem(s) found", err=True)
    raise typer.Exit(status)
