"""``newsmon doctor``."""

from __future__ import annotations

import typer

from newsmon.cli._common import ConfigOpt, app


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check config, state, sources, Kafka, the search server and the alert channels.

    One line per check; a problem's line says what to do. Exit status: 0 everything works
    (warnings allowed); 2 the config is invalid; 1 a service or endpoint is not usable; 3 some
    sources are failing or disabled; 4 every enabled source is (the first that applies).
    """
    from newsmon.ops import doctor as checks

    findings = checks.run_checks(config)
    for finding in findings:
        typer.echo(finding.line())
    status = checks.exit_status(findings)
    problems = sum(1 for f in findings if f.status == "fail")
    warnings = sum(1 for f in findings if f.status == "warn")
    if problems:
        summary = f"doctor: {problems} problem(s) found (exit {status})"
    elif warnings:
        summary = f"doctor: no problem, {warnings} warning(s)"
    else:
        summary = "doctor: all checks passed"
    typer.echo(summary, err=True)
    raise typer.Exit(status)
