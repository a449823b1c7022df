"""``newsmon serve``: the alert inbox (newsmon/serve/), and ``serve hash-password``."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from newsmon.cli._common import EXIT_CONFIG, ConfigOpt, command_group, fail, settings

serve_app = command_group(
    "serve", "The alert inbox: answer alerts in a browser (see docs/inbox.md).",
    invoke_without_command=True, no_args_is_help=False)


@serve_app.callback()
def serve(
    ctx: typer.Context,
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 in a container).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8300,
    https_only: Annotated[bool, typer.Option(
        "--https-only", help="Mark the session cookie Secure (behind a TLS proxy).")] = False,
) -> None:
    """Serve the inbox. Users from NEWSMON_INBOX_USERS (name:hash), API keys from
    NEWSMON_INBOX_API_KEYS (name:key), the session key from NEWSMON_INBOX_SECRET."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from newsmon.pipeline.store import open_store
    from newsmon.serve.app import create_app
    from newsmon.serve.auth import AuthConfigError, Credentials

    loaded = settings(config)
    try:
        credentials = Credentials.from_env()
    except AuthConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    store = open_store(loaded.search, loaded.state_dir)
    app = create_app(store, credentials, secret=os.environ.get("NEWSMON_INBOX_SECRET"),
                     https_only=https_only)
    typer.echo(f"newsmon inbox on http://{host}:{port}/ ({len(credentials.users)} users, "
               f"{len(credentials.api_keys)} API keys)", err=True)
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True)


@serve_app.command("hash-password")
def hash_password_command() -> None:
    """Print the hash of a password for NEWSMON_INBOX_USERS (read from a prompt, or from
    standard input when it is not a terminal)."""
    from newsmon.serve.auth import hash_password

    if sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise fail("empty password", EXIT_CONFIG)
    typer.echo(hash_password(password))
