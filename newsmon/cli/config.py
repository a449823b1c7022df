"""``newsmon config check|docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from newsmon.cli._common import EXIT_CONFIG, ConfigOpt, command_group, fail
from newsmon.configfile import ConfigError

config_app = command_group("config", "Validate configuration.")


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate newsmon.yaml, feeds, topics and alert rules; one line per problem."""
    from newsmon.ops.loading import load_all

    try:
        loaded = load_all(config)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    if loaded.problems:
        raise fail("\n".join(loaded.problems), EXIT_CONFIG)
    redacted = loaded.settings.model_dump(mode="json")
    typer.echo(json.dumps(redacted, indent=2, default=str))
    # Unlabelled sources are valid (a source may be tried before it is researched) but their
    # alerts cannot say who reports, and corroboration treats each as its own owner.
    for source in loaded.feeds.sources if loaded.feeds is not None else ():
        if source.unlabelled:
            typer.echo(f"warning: {loaded.settings.feeds}: source {source.id} is unlabelled "
                       f"(no {' and no '.join(source.unlabelled)}; see docs/connectors.md)",
                       err=True)
    typer.echo("config ok", err=True)


@config_app.command("docs")
def config_docs(
    out: Annotated[Path | None, typer.Option(help="Write here (docs/settings.md) instead of "
                                             "standard output.")] = None,
) -> None:
    """The table of every setting: YAML key, environment variable, type, default."""
    from newsmon.ops.settings_doc import render

    text = render()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(str(out), err=True)
