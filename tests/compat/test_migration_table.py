"""docs/migrating-from-delayed_job.md, walked row by row: each delayed_job name works as shown,
or is refused with a one-line error that says what to use.

Every row of the doc's mapping tables (header ``delayed_job | dj-daemon | example``) needs a check
here, and every check a row: a feature added to one and not the other fails the walk.
Rows that need a database run on each dialect; settings and commands need none.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest

from dj_daemon import api, cli
from dj_daemon.api import Queue
from dj_daemon.config import DELAYED_JOB_NAMES, SETTINGS as SETTING_TABLE, Config, load_config
from dj_daemon.errors import ConfigError, EnqueueError
from dj_daemon.job import utcnow
from dj_daemon.store import Store
from dj_daemon.worker import Worker
from tests.compat import table_jobs
from tests.conftest import ROOT
from tests.jobs import runs

DOC = ROOT / "docs" / "migrating-from-delayed_job.md"
HEADER = ("delayed_job", "dj-daemon", "example")


def mapping_rows() -> list[str]:
    """The first cell of each row of the doc's mapping tables, backticks removed."""
    names, inside = [], False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = tuple(cell.strip() for cell in line.strip().strip("|").split("|")) if line.startswith("|") else ()
        if cells == HEADER:
            inside = True
        elif not cells:
            inside = False
        elif inside and not set(line) <= set("|- "):
            names.append(cells[0].replace("`", ""))
    return names


@dataclass
class Ctx:
    """What a row's check needs: a queue on the test's database and a file jobs write to."""

    config: Config
    store: Store
    queue: Queue
    side: str

    def work_off(self, config: Config | None = None) -> None:
        Worker(config or self.config, self.store, name="testhost:1").run(exit_when_empty=True)

    def runs(self) -> list[str]:
        return runs(self.side)


@pytest.fixture
def ctx(config: Config, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ctx:
    queue = Queue(config, store)
    monkeypatch.setattr(api, "_default", queue)  # `.delay()` and `enqueue()` use this queue
    return Ctx(config, store, queue, str(tmp_path / "runs.txt"))


# -- Enqueuing: each check enqueues through the dj-daemon form and reads the row or the run back --

def _delay_method(ctx: Ctx) -> None:
    api.delay(table_jobs.Mailer(ctx.side)).deliver("a")
    ctx.work_off()
    assert ctx.runs() == ["a"]


def _delay_options(ctx: Ctx) -> None:
    job_id = api.delay(table_jobs.Mailer(ctx.side), run_at=timedelta(minutes=5), priority=4,
                       queue="media").deliver("a")
    row = ctx.store.get(job_id)
    assert (row.priority, row.queue) == (4, "media") and row.run_at > utcnow() + timedelta(minutes=4)


def _handle_asynchronously(ctx: Ctx) -> None:
    row = ctx.store.get(table_jobs.send_mail.delay(ctx.side, "a"))
    assert row.queue == "mail"
    ctx.work_off()
    assert ctx.runs() == ["a"]


def _without_delay(ctx: Ctx) -> None:
    table_jobs.send_mail(ctx.side, "inline")
    assert ctx.runs() == ["inline"] and ctx.store.jobs() == []


def _enqueue_object(ctx: Ctx) -> None:
    api.enqueue(table_jobs.NewsletterJob(ctx.side))
    ctx.work_off()
    assert ctx.runs() == ["enqueue", "before", "perform", "success", "after"]


def _enqueue_object_options(ctx: Ctx) -> None:
    row = ctx.store.get(api.enqueue(table_jobs.NewsletterJob(ctx.side), priority=5, queue="q",
                                    run_at=timedelta(hours=1)))
    assert (row.priority, row.queue) == (5, "q") and row.run_at > utcnow() + timedelta(minutes=59)


def _run_at_forms(ctx: Ctx) -> None:
    later = utcnow() + timedelta(minutes=5)
    for run_at in (lambda: timedelta(minutes=5), timedelta(minutes=5), later):
        row = ctx.store.get(api.enqueue(table_jobs.send_mail, ctx.side, "a", run_at=run_at))
        assert row.run_at >= later - timedelta(seconds=5)


def _priority_proc(ctx: Ctx) -> None:
    with pytest.raises((EnqueueError, TypeError)) as refused:
        api.enqueue(table_jobs.send_mail, ctx.side, "a", priority=lambda: 3)
    assert len(str(refused.value).splitlines()) == 1 and "priority" in str(refused.value)


def _max_attempts_at_enqueue(ctx: Ctx) -> None:
    from tests.jobs import always_fails
    job_id = ctx.queue.enqueue_call(always_fails, (ctx.side,), max_attempts=2)
    for _ in range(3):
        ctx.work_off(ctx.config.replace(max_attempts=25, backoff_scale=0))
    row = ctx.store.get(job_id)
    assert row.failed_at is not None and row.attempts == 2


def _perform(ctx: Ctx) -> None:
    api.enqueue(table_jobs.NewsletterJob(ctx.side))
    ctx.work_off()
    assert "perform" in ctx.runs()


def _class_max_attempts(ctx: Ctx) -> None:
    job_id = api.enqueue(table_jobs.KeptNewsletterJob(ctx.side, fail=True))
    for _ in range(4):
        ctx.work_off()
        _due_now(ctx, job_id)
    row = ctx.store.get(job_id)
    assert row.failed_at is not None and row.attempts == 3


def _due_now(ctx: Ctx, job_id: int) -> None:
    """Bring a rescheduled job's turn forward (its reschedule_at put it hours away)."""
    from sqlalchemy import update
    from dj_daemon.schema import delayed_jobs as dj
    ctx.store.transaction(lambda conn: conn.execute(
        update(dj).where(dj.c.id == job_id, dj.c.failed_at.is_(None)).values(run_at=utcnow())))


def _class_max_run_time(ctx: Ctx) -> None:
    from dj_daemon.retry import policy_for
    assert policy_for(table_jobs.NewsletterJob, ctx.config).max_run_time == 120


def _class_destroy_failed(ctx: Ctx) -> None:
    job_id = api.enqueue(table_jobs.NewsletterJob(ctx.side, fail=True), max_attempts=1)
    ctx.work_off()
    assert "failure" in ctx.runs()
    with pytest.raises(Exception):
        ctx.store.get(job_id)


def _class_queue_name(ctx: Ctx) -> None:
    assert ctx.store.get(api.enqueue(table_jobs.NewsletterJob(ctx.side))).queue == "newsletter"


def _class_priority(ctx: Ctx) -> None:
    assert ctx.store.get(api.enqueue(table_jobs.NewsletterJob(ctx.side))).priority == 10


def _class_reschedule_at(ctx: Ctx) -> None:
    job_id = api.enqueue(table_jobs.NewsletterJob(ctx.side, fail=True))
    ctx.work_off()
    row = ctx.store.get(job_id)
    assert row.attempts == 1 and timedelta(minutes=59) < row.run_at - utcnow() <= timedelta(hours=1)


def _hooks(ctx: Ctx) -> None:
    api.enqueue(table_jobs.NewsletterJob(ctx.side, fail=True), max_attempts=1)
    ctx.work_off()
    assert ctx.runs() == ["enqueue", "before", "perform", "error", "after", "failure"]


def _lifecycle(ctx: Ctx) -> None:
    from dj_daemon import lifecycle
    seen: list[int] = []
    job_id = api.enqueue(table_jobs.send_mail, ctx.side, "a")
    lifecycle.around("perform", lambda worker, job, proceed: (seen.append(job.id), proceed())[1])
    try:
        ctx.work_off()
    finally:
        lifecycle.LIFECYCLE.clear()
    assert seen == [job_id] and ctx.runs() == ["a"]


def _json_handler(ctx: Ctx) -> None:
    import json
    handler = json.loads(ctx.store.get(api.enqueue(table_jobs.send_mail, ctx.side, "a")).handler)
    assert handler["target"] == "tests.compat.table_jobs:send_mail" and handler["args"] == [ctx.side, "a"]


def _string_target(ctx: Ctx) -> None:
    api.enqueue("tests.compat.table_jobs:send_mail", ctx.side, "by-name")
    ctx.work_off()
    assert ctx.runs() == ["by-name"]


API_CHECKS: dict[str, Callable[[Ctx], None]] = {
    "object.delay.method(args)": _delay_method,
    "delay(run_at:, priority:, queue:)": _delay_options,
    "handle_asynchronously :method": _handle_asynchronously,
    "method_without_delay": _without_delay,
    "Delayed::Job.enqueue(job_object)": _enqueue_object,
    "Delayed::Job.enqueue(job, priority:, run_at:, queue:)": _enqueue_object_options,
    "run_at: Proc.new { 5.minutes.from_now }": _run_at_forms,
    "priority: Proc.new { ... }": _priority_proc,
    "max_attempts: at enqueue": _max_attempts_at_enqueue,
    "a job class's perform": _perform,
    "a job class's max_attempts": _class_max_attempts,
    "a job class's max_run_time": _class_max_run_time,
    "a job class's destroy_failed_jobs?": _class_destroy_failed,
    "a job class's queue_name": _class_queue_name,
    "a job class's priority": _class_priority,
    "a job class's reschedule_at(time, attempts)": _class_reschedule_at,
    "hooks enqueue, before, after, success, error, failure": _hooks,
    "Delayed::Worker.plugins / Delayed::Lifecycle": _lifecycle,
    "a YAML handler": _json_handler,
    "enqueue by class name (no import)": _string_target,
}


# -- Settings: each name loads from the file's form, the environment's and configure()'s ---------

SETTINGS: dict[str, tuple[str, str] | None] = {  # the dj-daemon setting and a value; None: refused
    "Delayed::Worker.default_priority": ("default_priority", "10"),
    "Delayed::Worker.default_queue_name": ("default_queue_name", "default"),
    "Delayed::Worker.max_attempts": ("max_attempts", "3"),
    "Delayed::Worker.max_run_time": ("max_run_time", "300"),
    "Delayed::Worker.sleep_delay": ("sleep_delay", "60"),
    "Delayed::Worker.read_ahead": ("batch_size", "10"),
    "Delayed::Worker.destroy_failed_jobs": ("destroy_failed_jobs", "true"),
    "Delayed::Worker.delay_jobs": ("delay_jobs", "false"),
    "Delayed::Worker.logger": ("log_format", "json"),
    "Delayed::Worker.queues": ("queues", "mail,zenodo"),
    "Delayed::Worker.raise_signal_exceptions": None,
    "Delayed::Worker.read_ahead (as named there)": None,
    "Delayed::Worker.queue_attributes": None,  # in code: checked by _queue_attributes
}


def _setting(name: str, tmp_path: Path) -> None:
    """The setting loads from its section of the file, from the environment and from code; a
    refused one (delayed_job's name) fails in one line that says what to use."""
    entry = SETTINGS[name]
    if entry is None and name.endswith("queue_attributes"):
        return _queue_attributes(tmp_path)
    key = entry[0] if entry else name.split(".", 1)[1].split()[0]
    value = entry[1] if entry else "true"
    path = tmp_path / "dj.conf"
    section = SETTING_TABLE[key].section if entry else "worker"
    path.write_text(f"[{section}]\n{key} = {value}\n", encoding="utf-8")
    if entry is None:
        for refuse in (lambda: load_config(str(path), env={}), lambda: load_config(overrides={key: 1}, env={})):
            with pytest.raises(ConfigError) as refused:
                refuse()
            assert len(str(refused.value).splitlines()) == 1 and DELAYED_JOB_NAMES[key] in str(refused.value)
        return
    from_file = load_config(str(path), env={})
    from_env = load_config(env={SETTING_TABLE[key].env: value}, read_default=False)
    from_code = load_config(env={}, overrides={key: value}, read_default=False)
    assert getattr(from_file, key) == getattr(from_env, key) == getattr(from_code, key)
    assert getattr(from_file, key) != getattr(Config(), key)


def _queue_attributes(tmp_path: Path) -> None:
    configured = Config(allowed_modules=("tests",)).replace(queue_attributes={"mail": {"priority": -5}})
    assert Queue(configured, store=None).prepare(table_jobs.send_mail, "p", "t").priority == -5


# -- Commands: each form parses (its --help answers), a refused one fails in one line ------------

COMMANDS: dict[str, list[str] | tuple[str, ...]] = {  # a list works; a tuple is refused
    "script/delayed_job start": ["start"],
    "script/delayed_job stop": ["stop"],
    "script/delayed_job restart": ["-n", "2", "restart"],
    "script/delayed_job run": ["run", "-n", "4"],
    "script/delayed_job status": ["status"],
    "-n, --number_of_workers": ["-n", "3", "start"],
    "--queue, --queues": ["--queue", "mail", "--queues=mail,tasks", "start"],
    "--pool": ["--pool=mail", "--pool=*:2", "start"],
    "--exit-on-complete": ["-n", "2", "run", "--exit-on-complete"],
    "-p, --prefix": ["-p", "app1", "start"],
    "--min-priority, --max-priority": ["work", "--min-priority", "0", "--max-priority", "9"],
    "--sleep-delay": ["work", "--sleep-delay", "2"],
    "--read-ahead": ("--read-ahead", "10", "start"),
    "--pid-dir": ["--pid-dir", "/run/dj", "start"],
    "--log-dir": ["--log-dir", "/var/log/dj", "start"],
    "-i, --identifier": ["work", "--name", "mailer"],
    "--monitor": ("--monitor", "start"),
    "--daemon-options": ("--daemon-options", "a", "start"),
    "--version": ["--version"],
    "rake jobs:work": ["work", "--queues", "mail"],
    "rake jobs:workoff": ["workoff"],
    "rake jobs:clear": ["clear", "--queue", "mail", "--yes"],
    "rails generate delayed_job:active_record": ["db", "init"],
}


def _command(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = COMMANDS[name]
    works = isinstance(args, list)
    line = list(args) + (["--help"] if works and args != ["--version"] else [])
    with pytest.raises(SystemExit) as exited:
        cli.main(line)
    out, err = capsys.readouterr()
    if works:
        assert exited.value.code in (0, None), err
    else:
        assert exited.value.code == 2 and len(err.strip().splitlines()) == 1, err
        assert "No such option" not in err and re.search(r"use |run `delayed_job|batch_size", err), err


# -- The walk ---------------------------------------------------------------------------------------

def test_every_row_has_a_check_and_every_check_a_row() -> None:
    rows = mapping_rows()
    assert len(rows) == len(set(rows)), "a name appears twice in the tables"
    assert set(rows) == set(API_CHECKS) | set(SETTINGS) | set(COMMANDS) | {"QUEUE=, QUEUES="}


@pytest.mark.parametrize("name", sorted(API_CHECKS))
def test_enqueuing_row(name: str, ctx: Ctx) -> None:
    API_CHECKS[name](ctx)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_setting_row(name: str, tmp_path: Path) -> None:
    _setting(name, tmp_path)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_row(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    _command(name, capsys)


def test_queues_from_the_environment() -> None:
    """The row ``QUEUE=, QUEUES=``: delayed_job's ``QUEUES=mail,tasks rake jobs:work`` is
    ``DJ_QUEUES=mail,tasks delayed_job work``."""
    assert load_config(env={"DJ_QUEUES": "mail,tasks"}, read_default=False).queues == ("mail", "tasks")
