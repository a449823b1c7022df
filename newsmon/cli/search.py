"""``newsmon search setup|export|kibana``: index templates, indices, Kibana objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from newsmon.cli._common import EXIT_FAILED, ConfigOpt, command_group, fail, settings

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


@search_app.command("export")
def search_export(
    out: Annotated[Path, typer.Option(help="Directory for the template JSON files.")] = Path(
        "deploy/search"
    ),
    prefix: str = "newsmon",
) -> None:
    """Write the index templates as JSON, for operators who apply them with their own tools.

    ``<kind>.template.json`` uses the standard analyzer (every server has it);
    ``articles.languages.template.json`` adds the per-language subfields for the analyzers of
    the analysis-common module (``newsmon search setup`` asks the server which it has).
    """
    from newsmon.languages import COMMON_LANGUAGES
    from newsmon.pipeline.store.mappings import MAPPINGS, index_template

    out.mkdir(parents=True, exist_ok=True)
    files = {f"{kind}.template.json": index_template(prefix, kind) for kind in MAPPINGS}
    files["articles.languages.template.json"] = index_template(
        prefix, "articles", COMMON_LANGUAGES)
    for name, body in files.items():
        path = out / name
        path.write_text(json.dumps(body, indent=2) + "\n")
        typer.echo(str(path))


@search_app.command("kibana")
def search_kibana(
    out: Annotated[Path, typer.Option(help="The saved objects file (NDJSON).")] = Path(
        "deploy/kibana/newsmon.ndjson"
    ),
    prefix: str = "newsmon",
) -> None:
    """Write the Kibana saved objects (data views, dashboard): import them with Kibana's
    saved objects API (see deploy/kibana/README.md)."""
    from newsmon.ops.dashboards import ndjson

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(ndjson(prefix), encoding="utf-8")
    typer.echo(str(out))
