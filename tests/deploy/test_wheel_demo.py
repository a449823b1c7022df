"""The wheel alone runs the demo: build it, install it in a fresh virtual environment outside
the checkout, and run ``newsmon run --demo`` from a directory that is not the checkout either.
This is what the Docker image does (Dockerfile: ``pip install /wheels/*.whl``); it failed when
the demo configuration was found through ``__file__`` next to the sources instead of in the
package (``newsmon.shipped``, config/ as package data).

The fresh environment gets newsmon from the wheel and nothing from the checkout. Its
dependencies come from this test run's own environment through a ``.pth`` line (downloading
Beam and the clients again would take minutes): ``pip check`` then holds them against the
wheel's metadata, and the test asserts that newsmon itself and its configuration are read
from the fresh environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_installed_wheel_runs_the_demo_outside_the_checkout(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "--wheel-dir", wheels, ROOT], cwd=tmp_path)
    (wheel,) = wheels.glob("newsmon-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       cwd=tmp_path).stdout.strip())
    # The dependencies: this environment's site-packages, after the fresh one's own. Its .pth
    # files (the checkout's editable install among them) are not read from an added path.
    (purelib / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel],
        cwd=tmp_path)
    run([sys.executable, "-m", "pip", "--python", python, "check"], cwd=tmp_path)

    where = run([python, "-c", "import newsmon, newsmon.config as c, newsmon.pipeline, "
                 "newsmon.connectors; print(newsmon.__file__); print(c.shipped_config_dir())"],
                cwd=tmp_path).stdout.split()
    assert all(Path(p).is_relative_to(purelib) for p in where), where

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NEWSMON_", "PYTHON", "VIRTUAL_ENV"))}
    proc = run([env_dir / "bin" / "newsmon", "run", "--demo"], cwd=work, env=env)
    out = proc.stdout
    found = re.search(r"processed (\d+) new items; store .* holds (\d+) articles, (\d+) alerts",
                      out)
    assert found, out[-3000:]
    items, articles, alerts = map(int, found.groups())
    assert items > 0 and articles > 0 and alerts > 0, out[-3000:]
    assert "status: OK" in out
    # The demo's state went to the working directory (state_dir: .newsmon/demo), not the
    # checkout or the installed package.
    assert (work / ".newsmon" / "demo" / "documents.sqlite").exists()
