"""Shell completion of both CLIs through click's own mechanism, through the installed entry points.

The lines of README.md's "Shell completion" section are the ones checked: every
program and shell has one, each makes a script, and the bash ones, evaluated
by a real bash, complete the real subcommands.
"""
from __future__ import annotations

import os
import re
import subprocess

import click
import pytest

from dj_daemon.cli import cli as delayed_job_cli
from long_jobs.cli import cli as long_jobs_cli
from long_jobs.report import STATE_ORDER
from tests.conftest import ROOT, bin_path

PROGRAMS: dict[str, click.Group] = {"delayed_job": delayed_job_cli, "long_jobs": long_jobs_cli}
SHELLS = ("bash", "zsh", "fish")
README_LINE = re.compile(r"_(\w+)_COMPLETE=(\w+)_source (\w+)")


def environment(**extra: str) -> dict[str, str]:
    """This process's environment, with the entry points on PATH and this checkout importable."""
    return {**os.environ, "PATH": f"{os.path.dirname(bin_path('delayed_job'))}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT), **extra}


def completion_variable(program: str) -> str:
    return f"_{program.upper()}_COMPLETE"


def readme_lines() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Shell completion\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def test_readme_has_a_line_for_every_program_and_shell() -> None:
    found = {(match.group(3), match.group(2)) for match in map(README_LINE.search, readme_lines()) if match}
    assert found == {(program, shell) for program in PROGRAMS for shell in SHELLS}
    for match in filter(None, map(README_LINE.search, readme_lines())):
        assert f"_{match.group(1)}_COMPLETE" == completion_variable(match.group(3))


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("program", PROGRAMS)
def test_each_shell_gets_a_script_that_calls_back_the_same_variable(program: str, shell: str) -> None:
    result = subprocess.run([bin_path(program)], env=environment(**{completion_variable(program): f"{shell}_source"}),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert f"{completion_variable(program)}={shell}_complete" in result.stdout


@pytest.mark.parametrize("words, expected", [
    ("delayed_job ", set(delayed_job_cli.commands)),
    ("delayed_job jobs ", set(delayed_job_cli.commands["jobs"].commands)),
    ("long_jobs ", set(long_jobs_cli.commands)),
    ("long_jobs list --state ", set(STATE_ORDER)),
])
def test_a_completion_request_answers_with_the_real_choices(words: str, expected: set[str]) -> None:
    program = words.split()[0]
    env = environment(COMP_WORDS=words, COMP_CWORD=str(len(words.split())),
                      **{completion_variable(program): "bash_complete"})
    result = subprocess.run([bin_path(program)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert {line.split(",", 1)[1] for line in result.stdout.splitlines()} == expected


def test_the_readme_bash_lines_complete_in_bash() -> None:
    """README's bash lines, evaluated by bash, register completions that offer the real subcommands."""
    setup = "\n".join(line for line in readme_lines() if "bash_source" in line)
    script = setup + '''
for program in delayed_job long_jobs; do
    function=$(complete -p "$program" | sed -E 's/.* -F ([^ ]+) .*/\\1/')
    COMP_WORDS=("$program" ""); COMP_CWORD=1; COMPREPLY=()
    "$function" "$program"
    echo "$program: ${COMPREPLY[*]}"
done
'''
    result = subprocess.run(["bash", "-c", script], env=environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    offered = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert {program: set(words.split()) for program, words in offered.items()} == {
        program: set(group.commands) for program, group in PROGRAMS.items()}
