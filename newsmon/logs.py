"""Logging for operators: one line per event, as text or JSON, with every secret masked.

* ``text`` (default): ``time level logger: message``; an exception adds its type and message on
  the same line (the traceback only with ``--verbose``).
* ``json``: one JSON object per line with ``ts`` (UTC), ``level``, ``logger``, ``message`` and,
  when the event names them, ``source_id``, ``stage``, ``alert_id``, ``channel``; an exception
  adds ``error`` and ``traceback`` (newlines escaped, so still one line).

The ids are taken from ``extra={"source_id": ...}`` when a call passes it, else from the
message's own format string: the house style writes ``"source %s: ..."``, so the argument that
follows ``source`` is the source id (likewise ``stage``, ``alert`` and ``channel``).

Secrets are masked in the final line, whichever library logged them: the values of the secret
settings (``SecretStr``), of the environment variables alert channels name in ``secret_env``,
Slack webhook URLs, every ``NEWSMON_*`` variable whose name says password, key, token or
secret, and the base64 forms an HTTP client puts in an ``Authorization`` header.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

LogFormat = Literal["text", "json"]

MASK = "**********"
#: Shorter values are not masked: masking "ab" everywhere would garble every line and hide
#: nothing worth hiding.
MIN_SECRET_LEN = 4
_SECRET_NAME = re.compile(r"PASSWORD|API_KEY|TOKEN|SECRET|CREDENTIAL", re.IGNORECASE)
_FIELDS = {"source": "source_id", "stage": "stage", "alert": "alert_id", "channel": "channel"}
_FIELD_IN_FORMAT = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdrfi]|\b(source|stage|alert|channel) %s")


class _Secrets:
    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str | None) -> None:
        if value and len(value) >= MIN_SECRET_LEN:
            self.values.add(value)

    def mask(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for value in sorted(self.values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text


SECRETS = _Secrets()


def add_secret(value: str | SecretStr | None, *, username: str | None = None) -> None:
    """Mask ``value`` (and, with ``username``, the Basic-auth header made of both) in logs."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not value:
        return
    SECRETS.add(value)
    SECRETS.add(base64.b64encode(value.encode()).decode())
    if username:
        SECRETS.add(base64.b64encode(f"{username}:{value}".encode()).decode())


def add_secrets_from_env(environ: Mapping[str, str] | None = None) -> None:
    environ = os.environ if environ is None else environ
    for name, value in environ.items():
        if name.startswith("NEWSMON_") and _SECRET_NAME.search(name):
            add_secret(value)


def add_secrets_of(model: BaseModel) -> None:
    """Every ``SecretStr`` anywhere in a settings model (username kept for Basic auth), the
    values of the variables channels name in ``secret_env``, and Slack webhook URLs (whoever
    has one can post to the channel: the URL is the credential)."""
    if getattr(model, "type", None) == "slack" and isinstance(getattr(model, "url", None), str):
        add_secret(model.url)  # type: ignore[attr-defined]  # checked just above
    for name, value in model:
        if isinstance(value, SecretStr):
            add_secret(value, username=getattr(model, "username", None))
        elif isinstance(value, BaseModel):
            add_secrets_of(value)
        elif name == "secret_env" and isinstance(value, str):
            add_secret(os.environ.get(value))
        elif isinstance(value, Mapping):
            for item in value.values():
                if isinstance(item, BaseModel):
                    add_secrets_of(item)


def _event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """source_id, stage, alert_id, channel: from ``extra`` or from the format string."""
    fields: dict[str, Any] = {}
    args = record.args if isinstance(record.args, tuple) else ()
    if args and isinstance(record.msg, str):
        for position, match in enumerate(_FIELD_IN_FORMAT.finditer(record.msg)):
            if match.group(1) and position < len(args):
                fields.setdefault(_FIELDS[match.group(1)], str(args[position]))
    for key in _FIELDS.values():
        value = record.__dict__.get(key)
        if value is not None:
            fields[key] = str(value)
    return fields


class TextFormatter(logging.Formatter):
    def __init__(self, traceback: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.traceback = traceback

    def format(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(_with_message(record))
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if self.traceback:
                line += "\n" + self.formatException(record.exc_info)
            else:
                line += f" | {type(exc).__name__}: {exc}".replace("\n", " ")
        return SECRETS.mask(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record = _with_message(record)
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.message,
            **_event_fields(record),
        }
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            event["error"] = f"{type(exc).__name__}: {exc}"
            event["traceback"] = self.formatException(record.exc_info)
        return SECRETS.mask(json.dumps(event, ensure_ascii=False, default=str))


def _with_message(record: logging.LogRecord) -> logging.LogRecord:
    record.message = record.getMessage()
    record.asctime = logging.Formatter.formatTime(logging.Formatter(), record)
    return record


_HANDLER_NAME = "newsmon"


def configure(fmt: LogFormat = "text", *, verbose: bool = False,
              stream: Any = None) -> None:
    """(Re)configure the root logger: one handler of ours, the format, the level.

    Safe to call again (the CLI does once the settings are loaded and name a format).
    """
    add_secrets_from_env()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(traceback=verbose))
    root.addHandler(handler)
    # Beam (through the root logger), Kafka and the HTTP clients log every bundle and request
    # at INFO: only their warnings reach operators, newsmon's own events all do.
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("newsmon").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        handler.addFilter(_drop_beam_notices)


#: (logger, message start) of what Beam logs that is no news to an operator: importing Beam
#: warns through the root logger that its Google Cloud extras (never used here) are missing,
#: and Beam's runner launcher says, at WARNING, that it starts and stops the Prism job
#: service at the start and end of every Prism run. Matched on the format string, so any
#: other warning of those loggers still shows.
BEAM_NOTICES: tuple[tuple[str, str], ...] = (
    ("root", "apitools not found"),
    ("apache_beam.utils.subprocess_server", "Really starting service"),
    ("apache_beam.utils.subprocess_server", "Really destroying service"),
)


def _drop_beam_notices(record: logging.LogRecord) -> bool:
    msg = str(record.msg)
    return not any(record.name == name and msg.startswith(start) for name, start in BEAM_NOTICES)


def current_format() -> LogFormat | None:
    for handler in logging.getLogger().handlers:
        if handler.get_name() == _HANDLER_NAME:
            return "json" if isinstance(handler.formatter, JsonFormatter) else "text"
    return None


def register_secrets(models: Iterable[BaseModel]) -> None:
    for model in models:
        add_secrets_of(model)
