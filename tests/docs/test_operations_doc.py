"""Every command in docs/operations.md runs in a test, and it stays so.

The doc's ``sh``/``console`` blocks are parsed into command lines
(``tests.docs.runbook``). Each must be claimed by exactly one runner
(``tests.docs.runners``, ``ops_runners``, ``observe_runners``), or this fails: a command
added to the doc needs a runner. A runner no command claims fails too. The
walk then runs every distinct command in the doc's order on one ``Site``: the
``delayed_job`` and ``long_jobs`` commands as written, in bash, against a real
config file, database, jobs and daemon; the init.d script itself. On MariaDB
and PostgreSQL only the key flow runs (db init, check, start, status, drain,
stop, restart), to keep the suite quick; the rest runs on SQLite.

Faked, because this machine has no systemd as PID 1: ``systemctl`` (the test
does what systemd would with the unit file, see ``tests.docs.site``) and so
``journalctl`` (the daemons' stderr under ``JOURNAL_STREAM`` stands for the
journal). Not run, because they would change this machine: ``useradd`` and
``update-rc.d``, whose arguments are checked against the unit and the script.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ROOT
from tests.docs import (  # noqa: F401  (register their runners)
    observe_runners, ops_runners, schedule_runners, web_runners,
)
from tests.docs.runbook import Command, RunbookError, commands
from tests.docs.runners import RUNNERS, Runner
from tests.docs.site import Site

DOC = ROOT / "docs" / "operations.md"


def runners_of(command: Command) -> list[Runner]:
    return [runner for runner in RUNNERS if runner.pattern.fullmatch(command.text)]


def test_every_command_has_one_runner_and_every_runner_a_command() -> None:
    found = commands(DOC.read_text())
    assert found, "no command found in docs/operations.md"
    claims = {command: runners_of(command) for command in found}
    unclaimed = [f"line {c.line}: {c.text}" for c, claimed in claims.items() if not claimed]
    assert not unclaimed, "commands of docs/operations.md that no test runs (add a runner in tests/docs):\n" \
        + "\n".join(unclaimed)
    doubly = [f"line {c.line}: {c.text}" for c, claimed in claims.items() if len(claimed) > 1]
    assert not doubly, "commands claimed by two runners:\n" + "\n".join(doubly)
    idle = [r.run.__name__ for r in RUNNERS if not any(r in claimed for claimed in claims.values())]
    assert not idle, f"runners for commands the doc no longer has: {idle}"


def test_the_parser_reads_sh_and_console_blocks_and_refuses_others() -> None:
    doc = ("```sh\nlong_jobs status   # exit 0, 3 or 4\nlong_jobs drain \\\n  --wait\n\n# a comment\n```\n"
           "```console\n$ delayed_job check\nconfig ok; ...\n$ echo '#not a comment'\n```\n"
           "```ini\n[daemon]\nworkers = 2\n```\n")
    assert commands(doc) == [Command("long_jobs status", 2), Command("long_jobs drain --wait", 3),
                             Command("delayed_job check", 9), Command("echo '#not a comment'", 11)]
    for hidden in ("```\nlong_jobs drain\n```\n", "```bash\nlong_jobs drain\n```\n", "```sh\nls\n"):
        with pytest.raises(RunbookError):
            commands(hidden)


@pytest.fixture
def site(config, subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Site]:
    site = Site(config, subprocess_env, tmp_path)
    yield site
    site.close()


def test_every_command_runs(site: Site) -> None:
    key_flow_only = make_url(site.config.url).get_backend_name() != "sqlite"
    done: set[str] = set()
    for command in commands(DOC.read_text()):
        [runner] = runners_of(command)
        if command.text in done or (key_flow_only and not runner.key_flow):
            continue
        done.add(command.text)
        started = time.monotonic()
        print(f"docs/operations.md:{command.line}: {command.text}", end="", flush=True)
        runner.run(site, runner.pattern.fullmatch(command.text))
        print(f"  ({time.monotonic() - started:.1f}s)")
