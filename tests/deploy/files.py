"""What the deploy files say, read the way their tools read them: the newsmon command lines,
the NEWSMON_* variables and the ports of Compose, Kubernetes, systemd and the Dockerfile.

Used by the tests beside it to check that deploy/ agrees with the code (commands and options
exist, variables are settings, ports line up) and with itself.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml

from newsmon.cli import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
COMPOSE_ENV = DEPLOY / "compose" / ".env.example"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
DOCKERFILE = ROOT / "Dockerfile"

#: NEWSMON_* variables that are not settings but are read all the same (config.py).
NON_SETTING_VARIABLES = {"NEWSMON_CONFIG_DIR"}
#: The metrics ports, one per continuous command, the same on every target.
METRICS_PORTS = {"poll": 9464, "pipeline": 9465}


@dataclass(frozen=True)
class CommandLine:
    where: str
    argv: tuple[str, ...]

    def option(self, name: str) -> str | None:
        args = list(self.argv)
        return args[args.index(name) + 1] if name in args else None


def parse_cli(argv: tuple[str, ...]) -> Any:
    """Parse a newsmon command line with the real CLI, without running it; returns the
    context of the command it names. Raises the CLI's usage error when it is wrong."""

    def parse(command: Any, args: list[str], parent: Any = None) -> Any:
        ctx = command.make_context(command.name or "newsmon", args, parent=parent)
        if hasattr(command, "resolve_command"):  # a group: go down to the subcommand
            _name, sub, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
            return parse(sub, rest, ctx)
        return ctx

    return parse(typer.main.get_command(app), list(argv))


# --- Compose --------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def env_file(path: Path, *, commented: bool = False) -> dict[str, str]:
    """KEY=value lines; with ``commented``, also the ``# KEY=value`` examples."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if commented and re.match(r"#\s*[A-Z][A-Z0-9_]*=", line):
            line = line.lstrip("#").strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} (and $$ for a literal $)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if name in env and (env[name] or op != ":-"):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", one, value).replace(
        "$$", "$")


def newsmon_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the newsmon image."""
    return {name: svc for name, svc in doc["services"].items()
            if str(svc.get("image", "")).startswith("newsmon:")}


def compose_commands(doc: dict[str, Any]) -> Iterator[CommandLine]:
    for name, svc in newsmon_services(doc).items():
        yield CommandLine(f"compose service {name}", tuple(svc["command"]))


# --- Kubernetes -----------------------------------------------------------------------------


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes resource in deploy/k8s (not the kustomization, which is none)."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                docs.append((path, doc))
    return docs


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    if doc.get("kind") in ("Deployment", "StatefulSet", "Job"):
        return dict(doc["spec"]["template"]["spec"])
    return None


def k8s_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, the resource, a newsmon container) for every workload."""
    for path, doc in k8s_documents():
        spec = pod_spec(doc)
        for container in (spec or {}).get("containers", []):
            if str(container.get("image", "")).split(":")[0] == "newsmon":
                yield f"{path.name} {doc['kind']}/{doc['metadata']['name']}", doc, container


def k8s_commands() -> Iterator[CommandLine]:
    for where, _doc, container in k8s_containers():
        yield CommandLine(where, tuple(container.get("command", [])[1:] + container["args"]))


# --- systemd --------------------------------------------------------------------------------


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, value = line.split("=", 1)
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def systemd_commands() -> Iterator[CommandLine]:
    for path in sorted(SYSTEMD.glob("*.service")):
        for line in unit(path)["Service"].get("ExecStart", []):
            argv = shlex.split(line)
            assert argv[0].endswith("/bin/newsmon"), f"{path.name}: {line}"
            yield CommandLine(f"systemd {path.name}", tuple(argv[1:]))


def all_commands() -> list[CommandLine]:
    return [*compose_commands(compose()), *k8s_commands(), *systemd_commands()]
