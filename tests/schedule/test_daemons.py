"""Recurring jobs through the real daemon: two hosts (distinct DJ_HOSTNAME) sharing one schedule
enqueue each occurrence once, as the runs table and the jobs' own lines count; a daemon that
starts after every daemon was down follows the entry's missed-occurrence policy."""
from __future__ import annotations

import signal
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import func, select

from dj_daemon.schema import delayed_jobs, recurring_runs
from dj_daemon.store import Store, open_store
from dj_daemon.store import recurring as runs
from tests.conftest import DIALECTS, config_for, env_for, make_db_url
from tests.process.daemon import Daemon, wait_for

ENTRY = "[schedule:tick]\ninterval = 1\ntarget = tests.schedule.recurring_jobs:record\nargs = [{side}]\n"


def schedule_file(tmp_path: Path, side: Path, extra: str = "") -> str:
    path = tmp_path / "schedule.conf"
    path.write_text(ENTRY.format(side=f'"{side}"') + extra)
    return str(path)


def occurrences(store: Store) -> list[tuple[datetime, int, str]]:
    query = (select(recurring_runs.c.occurrence, recurring_runs.c.job_id, recurring_runs.c.hostname)
             .where(recurring_runs.c.name == "tick").order_by(recurring_runs.c.occurrence))
    return [tuple(row) for row in store.transaction(lambda conn: conn.execute(query).all())]


def waiting(store: Store) -> int:
    return store.transaction(lambda conn: conn.execute(select(func.count()).select_from(delayed_jobs)).scalar())


def start_two_hosts(start: Callable[..., Any], env: dict[str, str], tmp_path: Path) -> tuple[list[Any], Path]:
    """Two daemons (hosts host-a and host-b) on one schedule of one occurrence a second."""
    side = tmp_path / "runs.txt"
    config_path = schedule_file(tmp_path, side)
    hosts = [start("-n", "2", env={**env, "DJ_CONFIG": config_path, "DJ_HOSTNAME": name})
             for name in ("host-a", "host-b")]
    for daemon in hosts:
        daemon.wait_ready()
    return hosts, side


def check_two_hosts(store: Store, hosts: list[Any], side: Path, seconds: float) -> None:
    """Stop both; then each occurrence from the first to the last has one row, one job, and one
    run of that job."""
    for daemon in hosts:
        daemon.signal(signal.SIGTERM)
    for daemon in hosts:
        assert daemon.wait(60) == 0, daemon.log()[-2000:]
    rows = occurrences(store)
    assert len(rows) >= seconds - 3, hosts[0].log()[-2000:]
    first = rows[0][0]
    assert [row[0] for row in rows] == [first + timedelta(seconds=n) for n in range(len(rows))]  # no gap
    assert len({row[1] for row in rows}) == len(rows)
    performed = side.read_text().splitlines() if side.exists() else []
    assert len(performed) + waiting(store) == len(rows)  # every job once: run, or still waiting
    by_host = {row[2] for row in rows}
    assert by_host <= {"host-a", "host-b"}


def test_two_daemons_enqueue_each_occurrence_once(store: Store, start_daemon, subprocess_env,
                                                  tmp_path: Path) -> None:
    hosts, side = start_two_hosts(start_daemon, subprocess_env, tmp_path)
    time.sleep(20)
    check_two_hosts(store, hosts, side, 20)


@pytest.mark.slow
def test_two_daemons_enqueue_each_occurrence_once_for_three_minutes(request: pytest.FixtureRequest,
                                                                    tmp_path: Path) -> None:
    """The issue's acceptance run, on every dialect at once: each dialect's two daemons run side by
    side with the others', so that CI spends the three minutes once, not once per dialect."""
    with ExitStack() as stack:
        pairs = []
        for dialect in DIALECTS:
            folder = tmp_path / dialect
            folder.mkdir()
            config = config_for(stack.enter_context(contextmanager(make_db_url)(request, dialect, folder)), folder)
            store = open_store(config)
            stack.callback(store.dispose)
            store.create_schema()

            def start(*args: str, env: dict[str, str]) -> Daemon:
                daemon = Daemon(env, *args)
                stack.callback(daemon.close)
                return daemon
            pairs.append((store, *start_two_hosts(start, env_for(config), folder)))
        time.sleep(180)
        for store, hosts, side in pairs:
            check_two_hosts(store, hosts, side, 180)


@pytest.mark.parametrize("missed, extra_jobs", [("skip", 0), ("run_once", 1)])
def test_a_daemon_back_after_every_daemon_was_down_follows_the_missed_policy(
        store: Store, start_daemon, subprocess_env, tmp_path: Path, missed: str, extra_jobs: int) -> None:
    side = tmp_path / "runs.txt"
    config_path = schedule_file(tmp_path, side, f"grace = 2\nmissed = {missed}\n")
    last = store.clock().replace(microsecond=0) - timedelta(hours=1)  # the last run, an hour ago
    from dj_daemon.config import load_config
    from dj_daemon.schedule import Scheduler
    scheduler = Scheduler(load_config(config_path, env=subprocess_env))
    runs.enqueue(store, "tick", last, scheduler.planned[0].job(scheduler.queue), "gone-host")
    store.transaction(lambda conn: conn.execute(delayed_jobs.delete()))  # that run's job ran long ago
    daemon = start_daemon("-n", "1", env={**subprocess_env, "DJ_CONFIG": config_path, "DJ_HOSTNAME": "host-c"})
    daemon.wait_ready()
    wait_for(lambda: len(occurrences(store)) >= 4, 20, "three occurrences after the start")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemon.log()[-3000:]
    # the daemon says which job stands for the missed occurrences: it decided so at its turn's
    # time (the row's own enqueued_at is its commit, later by however loaded the host is)
    assert daemon.log().count("missed while no daemon ran") == extra_jobs, occurrences(store)
    assert len(occurrences(store)) >= 4 + extra_jobs - 1


def test_a_reload_brings_a_new_schedule_and_keeps_the_running_one_when_refused(
        store: Store, start_daemon, subprocess_env, tmp_path: Path) -> None:
    side = tmp_path / "runs.txt"
    config_path = schedule_file(tmp_path, side)
    daemon = start_daemon("-n", "1", env={**subprocess_env, "DJ_CONFIG": config_path, "DJ_HOSTNAME": "host-d"})
    daemon.wait_ready()
    wait_for(lambda: occurrences(store), 10, "the first occurrence")
    Path(config_path).write_text(Path(config_path).read_text().replace(":record", ":nowhere"))
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "schedule not reloaded, keeping the running one" in daemon.log(), 20, "the refusal logged: "
             + daemon.log()[-3000:])
    count = len(occurrences(store))
    wait_for(lambda: len(occurrences(store)) >= count + 2, 10, "the running schedule going on")
    Path(config_path).write_text(ENTRY.replace("tick", "tock").format(side=f'"{side}"'))
    daemon.signal(signal.SIGHUP)
    tock = select(func.count()).select_from(recurring_runs).where(recurring_runs.c.name == "tock")
    wait_for(lambda: store.transaction(lambda conn: conn.execute(tock).scalar()) >= 2, 15, "the new entry's runs")
    settled = len(occurrences(store))
    time.sleep(2)
    assert len(occurrences(store)) == settled  # the old entry is no longer enqueued
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemon.log()[-3000:]
