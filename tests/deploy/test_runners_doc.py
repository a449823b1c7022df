"""deploy/flink/README.md: its command lines parse with the real CLI and every Beam option it
passes after `--` is an option Beam knows (a typo would be silently dropped by Beam)."""

from __future__ import annotations

import re
import shlex

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tests.deploy import files

README = files.DEPLOY / "flink" / "README.md"


def command_lines() -> list[tuple[str, ...]]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip().startswith("newsmon "):
                argv = shlex.split(line.split("#")[0])
                lines.append(tuple(argv[1:]))
    return lines


def known_beam_options() -> set[str]:
    return set(PipelineOptions([]).get_all_options(retain_unknown_options=False))


@pytest.mark.parametrize("argv", command_lines(),
                         ids=lambda a: f'{a[a.index("--runner") + 1]}-{a[a.index("--mode") + 1]}')
def test_documented_runner_commands_parse_and_use_real_beam_options(
    argv: tuple[str, ...],
) -> None:
    ctx = files.parse_cli(argv)
    beam_args = ctx.params["beam_args"]
    assert ctx.params["runner"] in ("FlinkRunner", "PortableRunner", "SparkRunner",
                                    "DataflowRunner")
    assert beam_args, argv
    known = known_beam_options()
    for arg in beam_args:
        name = arg.split("=", 1)[0].removeprefix("--")
        name = name.removeprefix("no_") if name.startswith("no_use") else name
        assert name in known, f"--{name} is not a Beam pipeline option"


def test_the_readme_documents_each_runner() -> None:
    runners = [a[a.index("--runner") + 1] for a in command_lines()]
    assert sorted(runners) == ["DataflowRunner", "FlinkRunner", "FlinkRunner", "PortableRunner",
                               "SparkRunner"]
