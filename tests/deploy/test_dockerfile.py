"""The Dockerfile, read by BuildKit's own parser (the `dockerfile` package), and its build
context: what the allow-list in .dockerignore lets through is enough to build the package."""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib

import dockerfile

from tests.deploy import files

ROOT = files.ROOT


def instructions() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(files.DOCKERFILE)))


def _ignored(relative: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used here: last match wins, ! re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))
               for p in prefixes):
            ignored = not negate
    return ignored


def context_files() -> list[str]:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    return [f for f in tracked if not _ignored(f, patterns)]


def test_the_image_runs_newsmon_as_a_non_root_user_with_the_settings_layout() -> None:
    cmds = instructions()
    final = cmds[max(i for i, c in enumerate(cmds) if c.cmd == "FROM"):]
    by_cmd = {c.cmd: c.value for c in final}
    assert by_cmd["ENTRYPOINT"] == ("newsmon",)
    assert by_cmd["USER"][0] != "root" and by_cmd["USER"][0] != "0"
    env = dict(zip(by_cmd["ENV"][::2], by_cmd["ENV"][1::2], strict=True))
    assert env["NEWSMON_CONFIG_DIR"] == "/etc/newsmon"
    assert env["NEWSMON_STATE_DIR"] == by_cmd["WORKDIR"][0] == by_cmd["VOLUME"][0]
    assert files.compose()["x-newsmon"]["environment"]["NEWSMON_STATE_DIR"] == (
        env["NEWSMON_STATE_DIR"])


def test_every_copied_path_is_in_the_build_context() -> None:
    context = context_files()
    assert not any(f.startswith((".venv/", ".services/", "build/", "tests/")) for f in context)
    for cmd in instructions():
        if cmd.cmd == "COPY" and not any(f.startswith("--from") for f in cmd.flags):
            for source in cmd.value[:-1]:
                assert any(f == source or f.startswith(source + "/") for f in context), source


def test_the_context_holds_what_the_package_build_reads() -> None:
    """`pip wheel .` in the build stage reads pyproject.toml, its readme and the package
    folders of its package-dir mapping: all of them, and every tracked module, get through."""
    context = set(context_files())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["readme"] in context
    assert project["project"]["scripts"]["newsmon"] == "newsmon.cli:main"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    for package, folder in project["tool"]["setuptools"]["package-dir"].items():
        if package == "newsmon.shipped":  # data only: the shipped configuration
            continue
        modules = [f for f in tracked if f.startswith(folder + "/") and f.endswith(".py")]
        assert modules and set(modules) <= context, folder
        assert f"{folder}/py.typed" in context
    assert "config/newsmon.yaml" in context  # COPY config /etc/newsmon
    # ... and the build stage copies each of those folders (the wheel needs them all).
    cmds = instructions()
    build = cmds[:max(i for i, c in enumerate(cmds) if c.cmd == "FROM")]
    copied = {source for c in build if c.cmd == "COPY" for source in c.value[:-1]}
    assert set(project["tool"]["setuptools"]["package-dir"].values()) <= copied
