"""``newsmon search setup|export|kibana``: index templates, indices, Kibana objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from newsmon.cli._common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    ConfigOpt,
    command_group,
    fail,
    settings,
)

search_app = command_group("search", "Search-server index templates and indices.")


@search_app.command("setup")
def search_setup(config: ConfigOpt = None) -> None:
    """Apply index templates and create the indices (idempotent)."""
    from newsmon.pipeline.store import (
        SearchServerStore,
        StoreSetupError,
        StoreUnavailable,
        open_store,
    )

    loaded = settings(config)
    store = open_store(loaded.search, loaded.state_dir)
    try:
        if isinstance(store, SearchServerStore):
            store.setup(full=True)  # re-detect analyzers, re-apply everything
        else:
            store.setup()
    except StoreUnavailable as exc:
        raise fail(f"search server unavailable: {exc}", EXIT_FAILED) from exc
    except StoreSetupError as exc:
        raise fail(f"search setup: {exc}", EXIT_FAILED) from exc
    languages = ", ".join(getattr(store, "languages", ())) or "none (standard analyzer only)"
    layout = ""
    if isinstance(store, SearchServerStore):
        nodes = "1 data node" if store.data_nodes == 1 else f"{store.data_nodes} data nodes"
        layout = f"; 1 shard and {store.replicas} replica(s) per index for {nodes}"
    typer.echo(f"{loaded.search.backend}: templates and indices ready "
               f"(prefix {loaded.search.index_prefix}{layout}; language subfields: {languages})")


#: What ``export`` and ``kibana`` share: where to write, and the index prefix the written
#: objects name (the configured ``search.index_prefix`` unless given).
OutOpt = Annotated[Path | None, typer.Option(
    "--out", help="Where to write; the default is the command's (see its help).")]
PrefixOpt = Annotated[str | None, typer.Option(
    "--prefix", help="The index prefix the objects name (default: search.index_prefix of "
                     "the configuration, -c).")]


def _prefix(prefix: str | None, config: Path | None) -> str:
    """The given prefix, checked like ``search.index_prefix``; else the configured one."""
    if prefix is None:
        return settings(config).search.index_prefix
    from pydantic import ValidationError

    from newsmon.config import SearchSettings

    try:
        return SearchSettings(index_prefix=prefix).index_prefix
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise fail(f"--prefix {prefix!r}: {problem}", EXIT_CONFIG) from exc


@search_app.command("export")
def search_export(out: OutOpt = None, prefix: PrefixOpt = None,
                  config: ConfigOpt = None) -> None:
    """Write the index templates as JSON (into ``--out``, a directory, by default
    deploy/search), for operators who apply them with their own tools.

    ``<kind>.template.json`` uses the standard analyzer (every server has it);
    ``articles.languages.template.json`` adds the per-language subfields for the analyzers of
    the analysis-common module (``newsmon search setup`` asks the server which it has).
    """
    from newsmon.languages import COMMON_LANGUAGES
    from newsmon.pipeline.store.mappings import MAPPINGS, index_template

    name = _prefix(prefix, config)
    out = out or Path("deploy/search")
    out.mkdir(parents=True, exist_ok=True)
    files = {f"{kind}.template.json": index_template(name, kind) for kind in MAPPINGS}
    files["articles.languages.template.json"] = index_template(
        name, "articles", COMMON_LANGUAGES)
    for file_name, body in files.items():
        path = out / file_name
        path.write_text(json.dumps(body, indent=2) + "\n")
        typer.echo(str(path))


#: Where ``newsmon search kibana`` writes without ``--out``: a new file in the working
#: directory, never the repository's deploy/kibana/newsmon.ndjson (which names ``newsmon-*``).
def kibana_default_out(prefix: str) -> Path:
    return Path(f"kibana-{prefix}.ndjson")


@search_app.command("kibana")
def search_kibana(out: OutOpt = None, prefix: PrefixOpt = None,
                  config: ConfigOpt = None) -> None:
    """Write the Kibana saved objects (data views, dashboard) for an index prefix: import
    them with Kibana's saved objects API (see deploy/kibana/README.md).

    Without ``--out`` they go to ``kibana-<prefix>.ndjson`` in the working directory;
    ``--out -`` writes them to standard output. The path written is printed on stderr.
    """
    from newsmon.ops.dashboards import ndjson

    name = _prefix(prefix, config)
    text = ndjson(name)
    if out is not None and str(out) == "-":
        typer.echo(text, nl=False)
        return
    path = out or kibana_default_out(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"{path.resolve()}: {text.count(chr(10))} saved objects for index prefix "
               f"{name} (data views {name}-*)", err=True)
