"""The production path, checked as far as a machine without Docker, Flink or Google Cloud
allows: the Dockerfile's `harness` target is Beam's worker image of the Beam and Python
versions the project runs, with newsmon installed; and the Flink, Dataflow and portable
command lines of deploy/flink/README.md reach Beam, through the real CLI and the options
builder it uses, with the values they document. Nothing connects anywhere."""

from __future__ import annotations

import re
import sys
import tomllib

import apache_beam
import dockerfile
import pytest
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PortableOptions,
    StandardOptions,
    WorkerOptions,
)
from packaging.requirements import Requirement

from newsmon.pipeline.app import pipeline_options
from tests.deploy import files
from tests.deploy.test_runners_doc import command_lines

HARNESS_IMAGE = re.compile(r"apache/beam_python(\d+)\.(\d+)_sdk:(\S+)")


def stages() -> dict[str, list[dockerfile.Command]]:
    """The Dockerfile's instructions by stage name (the unnamed last stage: ``final``); the
    global ARGs before the first FROM under ``""``."""
    out: dict[str, list[dockerfile.Command]] = {"": []}
    name = ""
    for cmd in dockerfile.parse_file(str(files.DOCKERFILE)):
        if cmd.cmd == "FROM":
            name = cmd.value[2] if len(cmd.value) == 3 else "final"
            out[name] = []
        out[name].append(cmd)
    return out


def arg_defaults() -> dict[str, str]:
    return dict(c.value[0].split("=", 1) for c in stages()[""] if c.cmd == "ARG")


def harness_base() -> tuple[tuple[int, int], str]:
    """((major, minor) of Python, Beam version) of the harness stage's base image."""
    base = stages()["harness"][0].value[0]
    for name, value in arg_defaults().items():
        base = base.replace(f"${{{name}}}", value)
    found = HARNESS_IMAGE.fullmatch(base)
    assert found, base
    return (int(found[1]), int(found[2])), found[3]


def test_the_harness_is_beams_worker_image_of_the_sdk_the_project_runs() -> None:
    python, beam = harness_base()
    assert python == sys.version_info[:2]
    assert beam == apache_beam.__version__
    project = tomllib.loads((files.ROOT / "pyproject.toml").read_text())
    pins = [Requirement(r) for r in project["project"]["dependencies"]]
    assert beam in next(r for r in pins if r.name == "apache-beam").specifier
    assert project["tool"]["mypy"]["python_version"] == "{}.{}".format(*python)
    makefile = (files.ROOT / "Makefile").read_text()
    assert re.search(r"^BEAM_VERSION := (\S+)$", makefile, re.M)[1] == beam  # type: ignore[index]
    # The wheels it installs are built for that Python, with that Beam.
    build = stages()["build"]
    assert build[0].value[0] == "python:{}.{}-slim".format(*python)
    wheel = next(c.value[0] for c in build if c.cmd == "RUN" and "pip wheel" in c.value[0])
    assert '"apache-beam==${BEAM_VERSION}"' in wheel
    assert any(c.cmd == "ARG" and c.value == ("BEAM_VERSION",) for c in build)


def test_the_harness_has_newsmon_and_keeps_beams_entrypoint() -> None:
    harness = stages()["harness"]
    assert any(c.cmd == "COPY" and "--from=build" in c.flags for c in harness)
    install = next(c.value[0] for c in harness if c.cmd == "RUN")
    assert install.startswith("pip install") and "--no-index" in install
    assert install.split("&&")[0].split()[-1] == "newsmon"
    # The runner starts the image's /opt/apache/beam/boot: nothing may replace it.
    assert not any(c.cmd in ("ENTRYPOINT", "CMD", "USER") for c in harness)
    # `docker build .` still builds the newsmon image: the harness is not the last stage.
    assert list(stages())[-1] == "final"


def _options(argv: tuple[str, ...]) -> tuple[str, object]:
    ctx = files.parse_cli(argv)
    return ctx.params["runner"], pipeline_options(ctx.params["runner"],
                                                  ctx.params["beam_args"])


def _documented(runner: str, mode: str) -> tuple[str, ...]:
    found = [a for a in command_lines()
             if a[a.index("--runner") + 1] == runner and a[a.index("--mode") + 1] == mode]
    assert len(found) == 1, (runner, mode)
    return found[0]


def test_a_flink_command_line_reaches_beam_with_its_values() -> None:
    runner, options = _options(_documented("FlinkRunner", "batch"))
    assert runner == "FlinkRunner"
    flink = options.view_as(FlinkRunnerOptions)  # type: ignore[attr-defined]
    assert (flink.flink_master, flink.flink_version, flink.parallelism) == (
        "flink-jobmanager:8081", "1.19", 4)
    portable = options.view_as(PortableOptions)  # type: ignore[attr-defined]
    assert (portable.environment_type, portable.environment_config) == (
        "EXTERNAL", "localhost:50000")
    assert options.view_as(StandardOptions).runner == "FlinkRunner"  # type: ignore[attr-defined]


def test_a_flink_stream_runs_in_the_harness_image() -> None:
    _, options = _options(_documented("FlinkRunner", "stream"))
    portable = options.view_as(PortableOptions)  # type: ignore[attr-defined]
    assert portable.environment_type == "DOCKER"
    assert portable.environment_config.split("/")[-1].startswith("newsmon-harness:")
    assert options.view_as(FlinkRunnerOptions).flink_master == "flink-jobmanager:8081"  # type: ignore[attr-defined]


def test_the_portable_runner_goes_to_a_flink_job_service_with_the_harness_image() -> None:
    runner, options = _options(_documented("PortableRunner", "batch"))
    assert runner == "PortableRunner"
    portable = options.view_as(PortableOptions)  # type: ignore[attr-defined]
    assert (portable.job_endpoint, portable.artifact_endpoint) == (
        "beam-job-server:8099", "beam-job-server:8098")
    assert portable.environment_type == "DOCKER"
    assert portable.environment_config.split("/")[-1].startswith("newsmon-harness:")


def test_dataflow_gets_the_project_and_the_harness_image() -> None:
    _, options = _options(_documented("DataflowRunner", "batch"))
    gcp = options.view_as(GoogleCloudOptions)  # type: ignore[attr-defined]
    assert gcp.temp_location.startswith("gs://")
    assert gcp.project and gcp.region
    worker = options.view_as(WorkerOptions)  # type: ignore[attr-defined]
    assert worker.sdk_container_image.split("/")[-1].startswith("newsmon-harness:")
    assert worker.use_public_ips is False


@pytest.mark.parametrize("runner", ["FlinkRunner", "PortableRunner", "DataflowRunner"])
def test_the_prism_defaults_are_not_added_to_other_runners(runner: str) -> None:
    """Only PrismRunner gets the local binary and loopback workers added: a cluster runner
    given no environment keeps Beam's default (DOCKER), never LOOPBACK into the driver."""
    options = pipeline_options(runner, ["--job_endpoint=x:1"] if runner == "PortableRunner"
                               else [])
    args = options.get_all_options(drop_default=True)
    assert "prism_location" not in args
    assert options.view_as(PortableOptions).environment_type is None


@pytest.mark.parametrize("runner", ["PrismRunner", "FlinkRunner", "PortableRunner"])
def test_a_portable_job_is_not_given_up_after_five_minutes(runner: str) -> None:
    """Beam's default --job_server_timeout (300 s) is also the deadline of the job's state
    stream: a Prism stream died with "stream pipeline ended by itself (RUNNING)" after exactly
    300 s. Every run gets a deadline no run reaches; an operator's own value is kept."""
    extra = ["--prism_location=/bin/true"] if runner == "PrismRunner" else []
    portable = pipeline_options(runner, extra).view_as(PortableOptions)  # type: ignore[attr-defined]
    assert portable.job_server_timeout >= 30 * 24 * 3600
    mine = pipeline_options(runner, [*extra, "--job_server_timeout=60"])
    assert mine.view_as(PortableOptions).job_server_timeout == 60  # type: ignore[attr-defined]
