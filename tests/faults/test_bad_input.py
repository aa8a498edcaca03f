"""Experiment 5: bad input, as one table run through the ``delayed_job`` CLI subprocess.

Each row sets up a mistake, runs one command, and states the exit code and the
one line the command must print (``delayed_job: error: <one line>``, never a
traceback) or what the command must have done. Every row also enqueues a
canary job first: afterwards it is either untouched in the table or, where the
row ran ``workoff``, performed exactly once, so no mistake loses other work.
Rows that do not touch the queue run once (on SQLite); the rest on both dialects.
Hostile values written straight into ``delayed_jobs`` are ``test_bad_rows.py``'s.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy.engine import make_url

from dj_daemon.api import Queue
from dj_daemon.job import NewJob
from tests.conftest import DIALECTS, bin_path
from tests.faults import jobs as fjobs
from tests.faults.conftest import Ledger, dialect_of, report_figure, total_rows

MISSING = "987654321"
STRICT = "tests.faults,tests.jobs"  # an allow-list without tests.side_effect_module


@dataclass
class Ctx:
    config: Any
    store: Any
    env: dict[str, str]
    tmp: Path
    side: str
    trace: Path
    ids: dict[str, int] = field(default_factory=dict)
    expect_runs: list[str] = field(default_factory=list)

    def enqueue(self, token: str, **options: Any) -> int:
        return Queue(self.config, self.store).enqueue(fjobs.timed, self.side, token, 0, **options)

    def insert_handler(self, name: str, handler: Any) -> None:
        text = handler if isinstance(handler, str) else json.dumps(handler)
        self.ids[name] = self.store.insert([NewJob(handler=text, name=name)])[0]

    def dj(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([bin_path("delayed_job"), *args], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=60)

    def show(self, name: str) -> str:
        result = self.dj("jobs", "show", str(self.ids[name]))
        assert result.returncode == 0, result.stderr
        return result.stdout


@dataclass
class Case:
    name: str
    argv: list[str]
    code: int
    error: tuple[str, ...] | None = None   # fragments of the one-line error; None: not an error row
    stdout: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Ctx], None] | None = None
    check: Callable[[Ctx, subprocess.CompletedProcess], None] | None = None
    dialects: tuple[str, ...] = ("sqlite",)
    secret: str | None = None


# -- prepare/check steps of the rows ------------------------------------------------------
def corrupt_handlers(ctx: Ctx) -> None:
    ctx.insert_handler("truncated", '{"target": "tests.faults.jobs:timed", "args": [')
    ctx.insert_handler("not_an_object", "[1, 2, 3]")
    ctx.insert_handler("bad_path", {"target": 42, "args": [], "kwargs": {}})
    ctx.insert_handler("bad_receiver", {"receiver": {"x": 1}, "method": "perform"})
    ctx.enqueue("after_corrupt")
    ctx.expect_runs.append("after_corrupt")


def corrupt_failed_for_good(ctx: Ctx, result: subprocess.CompletedProcess) -> None:
    for name, reason in [("truncated", "malformed handler"), ("not_an_object", "not a JSON object"),
                         ("bad_path", "malformed import path 42"),
                         ("bad_receiver", "receiver is neither object nor record")]:
        shown = ctx.show(name)
        assert "state: failed" in shown and "attempts: 1" in shown, shown
        assert "last_error: DeserializationError: " in shown and reason in shown, shown


def disallowed_handlers(ctx: Ctx) -> None:
    ctx.insert_handler("target", {"target": "tests.side_effect_module:run", "args": [], "kwargs": {}})
    receiver = {"__dj_object__": "tests.side_effect_module:Thing", "attrs": {}}
    ctx.insert_handler("object", {"receiver": receiver, "method": "perform", "args": [], "kwargs": {}})
    ctx.insert_handler("record_arg", {"target": "tests.faults.jobs:timed", "kwargs": {},
                                      "args": [ctx.side, {"__dj_record__": "tests.side_effect_module:Row",
                                                          "pk": [1]}, 0]})


def disallowed_failed_unimported(ctx: Ctx, result: subprocess.CompletedProcess) -> None:
    assert not ctx.trace.exists(), "tests.side_effect_module was imported"
    for name in ("target", "object", "record_arg"):
        shown = ctx.show(name)
        assert "state: failed" in shown and "not in allowed_modules" in shown, shown


def not_imported(ctx: Ctx, result: subprocess.CompletedProcess) -> None:
    assert not ctx.trace.exists(), "tests.side_effect_module was imported"


def write_conf(body: str) -> Callable[[Ctx], None]:
    def prepare(ctx: Ctx) -> None:
        (ctx.tmp / "dj.conf").write_text(body)
    return prepare


def past_and_present(ctx: Ctx) -> None:
    for n in range(3):
        ctx.enqueue(f"now{n}")
    ctx.ids["past"] = ctx.enqueue("past", run_at=datetime(1900, 1, 1))
    ctx.expect_runs += ["now0", "now1", "now2", "past"]


def past_runs_first(ctx: Ctx, result: subprocess.CompletedProcess) -> None:
    ledger = Ledger.read(ctx.side)
    first = min(ledger.starts, key=lambda token: ledger.starts[token][0][1])
    assert first == "past", sorted(ledger.starts, key=lambda token: ledger.starts[token][0][1])


def far_future(ctx: Ctx) -> None:
    ctx.ids["future"] = ctx.enqueue("future", run_at=datetime(9999, 12, 31, 23, 59, 59))


def future_stored_not_run(ctx: Ctx, result: subprocess.CompletedProcess) -> None:
    assert "future" not in Ledger.read(ctx.side).starts
    listing = ctx.dj("jobs", "list", "--waiting")
    line = [row for row in listing.stdout.splitlines() if row.split()[0] == str(ctx.ids["future"])]
    assert line and "9999-12-31 23:59:59" in line[0] and "waiting" in line[0], listing.stdout
    shown = ctx.show("future")
    assert "run_at: 9999-12-31 23:59:59" in shown and "attempts: 0" in shown, shown


BOTH = tuple(DIALECTS)
CASES = [
    Case("corrupt_handler_fails_for_good_and_worker_goes_on", ["workoff"], 1,
         stdout=("2 jobs completed", "4 failed"), prepare=corrupt_handlers, check=corrupt_failed_for_good,
         dialects=BOTH),
    Case("handler_outside_allowlist_fails_unimported", ["workoff"], 1, stdout=("1 job completed", "3 failed"),
         env={"DJ_ALLOWED_MODULES": STRICT}, prepare=disallowed_handlers, check=disallowed_failed_unimported,
         dialects=BOTH),
    Case("enqueue_outside_allowlist", ["enqueue", "tests.side_effect_module:run"], 2,
         error=("tests.side_effect_module:run", "not in allowed_modules"), env={"DJ_ALLOWED_MODULES": STRICT},
         check=not_imported),
    Case("payload_over_max_payload_bytes", ["enqueue", "tests.faults.jobs:timed", '["x", "' + "y" * 500 + '", 0]'],
         1, error=("exceeds max_payload_bytes (200)",), env={"DJ_MAX_PAYLOAD_BYTES": "200"}, dialects=BOTH),
    Case("config_unknown_key", ["--config", "{tmp}/dj.conf", "check"], 1,
         error=("unknown key 'sleep_dealy' in [worker]", "did you mean 'sleep_delay'"),
         prepare=write_conf("[worker]\nsleep_dealy = 1\n")),
    Case("config_typo_section", ["--config", "{tmp}/dj.conf", "check"], 1,
         error=("unknown section [wroker]", "did you mean 'worker'"), prepare=write_conf("[wroker]\nworkers = 2\n")),
    Case("malformed_database_url", ["check"], 1, error=("malformed database url",),
         env={"DJ_DATABASE_URL": "mysql+pymysql//root:Pw-in-bad-url@127.0.0.1/x"}, secret="Pw-in-bad-url"),
    Case("unreachable_host_port_1", ["check"], 1,
         error=("mysql+pymysql://root:***@127.0.0.1:1/x", "Can't connect"),
         env={"DJ_DATABASE_URL": "mysql+pymysql://root:Port1-secret@127.0.0.1:1/x"}, secret="Port1-secret"),
    Case("wrong_password", ["check"], 1, error=("Access denied", "root:***@"),
         env={"DJ_DATABASE_URL": "{wrong_password_url}"}, secret="Wr0ng-pass-42", dialects=("mysql",)),
    Case("tables_not_created", ["check"], 1, error=("empty.sqlite3", "does not exist", "`delayed_job db init`"),
         env={"DJ_DATABASE_URL": "sqlite:///{tmp}/empty.sqlite3"}),
    Case("unknown_id_show", ["jobs", "show", MISSING], 1, error=(f"no job with id {MISSING}",), dialects=BOTH),
    Case("unknown_id_retry", ["jobs", "retry", MISSING], 1, error=(f"no job with id {MISSING}",), dialects=BOTH),
    Case("unknown_id_delete", ["jobs", "delete", MISSING], 1, error=(f"no job with id {MISSING}",), dialects=BOTH),
    Case("run_n_0", ["run", "-n", "0"], 2, error=("'-n' / '--workers'", "'0' is not a number of workers")),
    Case("run_n_abc", ["run", "-n", "abc"], 2, error=("'-n' / '--workers'", "'abc' is not a number of workers")),
    Case("run_at_far_past_runs_first", ["workoff"], 0, stdout=("5 jobs completed", "0 failed"),
         prepare=past_and_present, check=past_runs_first, dialects=BOTH),
    Case("run_at_year_9999_stored_not_run", ["workoff"], 0, stdout=("1 job completed", "0 failed"),
         prepare=far_future, check=future_stored_not_run, dialects=BOTH),
]


@pytest.mark.parametrize("db_url, case", [(d, c) for c in CASES for d in c.dialects], indirect=["db_url"],
                         ids=[f"{c.name}-{d}" for c in CASES for d in c.dialects])
def test_bad_input(config, store, subprocess_env, tmp_path: Path, case: Case) -> None:
    side = str(tmp_path / "runs.txt")
    ctx = Ctx(config, store, {**subprocess_env, "DJ_TEST_IMPORT_TRACE": str(tmp_path / "trace")}, tmp_path, side,
              tmp_path / "trace")
    ctx.ids["canary"] = ctx.enqueue("canary")
    if case.prepare:
        case.prepare(ctx)
    rows_before = total_rows(store)
    fill = {"tmp": str(tmp_path), "wrong_password_url": make_url(config.url).set(password="Wr0ng-pass-42")
            .render_as_string(hide_password=False)}
    argv = [arg.format(**fill) for arg in case.argv]
    result = ctx.dj(*argv, env={k: v.format(**fill) for k, v in case.env.items()})
    output = result.stdout + result.stderr
    assert result.returncode == case.code, output
    assert "Traceback" not in output
    if case.error is not None:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("delayed_job: error: "), result.stderr
        for fragment in case.error:
            assert fragment in lines[0], lines[0]
        assert result.stdout == ""
    for fragment in case.stdout:
        assert fragment in result.stdout, result.stdout
    if case.secret:
        assert case.secret not in output
    if case.check:
        case.check(ctx, result)
    ledger = Ledger.read(side)
    ran_workoff = argv[0] == "workoff"
    expected = (["canary"] if ran_workoff else []) + ctx.expect_runs
    if ran_workoff:
        report_figure(f"bad_input:{case.name}", dialect_of(store), len(expected), ledger.performed(expected),
                      len(ledger.doubled(expected)), len(ledger.lost(expected)), None, rows_before=rows_before,
                      rows_after=total_rows(store))
    # nothing lost: the jobs that should run ran exactly once; the canary is otherwise untouched
    assert sorted(ledger.starts) == sorted(ledger.ends) == sorted(expected)
    assert all(len(ledger.starts[t]) == len(ledger.ends[t]) == 1 for t in expected)
    if not ran_workoff:
        canary = store.get(ctx.ids["canary"])
        assert (canary.attempts, canary.locked_by, canary.failed_at, canary.last_error) == (0, None, None, None)
        assert total_rows(store) == rows_before  # a refused enqueue added nothing, a refused verb removed nothing


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_plain_json_receiver_is_a_malformed_handler(config, store, subprocess_env, tmp_path: Path) -> None:
    ctx = Ctx(config, store, subprocess_env, tmp_path, str(tmp_path / "runs.txt"), tmp_path / "trace")
    ctx.insert_handler("dict_receiver", {"receiver": {"x": 1}, "method": "keys", "args": [], "kwargs": {}})
    ctx.insert_handler("list_receiver", {"receiver": [3, 1, 2], "method": "sort", "args": [], "kwargs": {}})
    result = ctx.dj("workoff")
    assert "0 jobs completed" in result.stdout and "2 failed" in result.stdout, result.stdout
    for name in ("dict_receiver", "list_receiver"):
        shown = ctx.show(name)
        assert "state: failed" in shown and "receiver is neither object nor record" in shown, shown
