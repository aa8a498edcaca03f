"""This host's workers told alive or dead by their held journals, not by their pids (``journal.gone``).

Pids wrap within minutes on a busy host (``pid_max`` 32768 here), so a dead
worker's pid may be another live process's, or a new worker's, which then bears
the dead one's name. Each test leaves a dead worker's traces as a kill -9 of the
whole daemon does (its rows locked, its journal listing what finished, held by
no one) under a pid that a real live process holds, then runs the real daemon.
"""
from __future__ import annotations

import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import update

from dj_daemon import forked, journal
from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.job import utcnow
from dj_daemon.metrics import Metrics
from dj_daemon.reports import Board
from dj_daemon.schema import workers as wk
from dj_daemon.store import Filters, Store
from dj_daemon.upkeep import Release, Upkeep
from dj_daemon.worker import Worker
from long_jobs import ops
from tests import jobs
from tests.journals import hold
from tests.process.daemon import wait_for


@pytest.fixture
def other_pid() -> Iterator[int]:
    """The pid of a live process that is no worker: what a dead worker's pid may be now."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc.pid
    proc.kill()
    proc.wait()


def folder_of(config: Config) -> str:
    folder = journal.folder_of(config.journal_dir, config.sentinel_dir)
    journal.prepare(folder)
    return folder


def leave_dead_worker(config: Config, store: Store, name: str, side: str) -> list[int]:
    """Three jobs locked by ``name``: the first finished (its journal lists it), the second cut mid-run,
    the third never started; its heartbeat row and its journal left as a kill -9 leaves them."""
    queue = Queue(config, store)
    ids = [queue.enqueue(jobs.record, side, token) for token in ("finished", "cut", "unstarted")]
    store.register_worker(name, "testhost", int(name.rsplit(":", 1)[1]))
    assert [job.id for job in store.reserve(name, Filters(), limit=3).jobs] == ids
    notes = journal.Journal(folder_of(config), name)
    notes.note(ids[0])
    notes.close()
    return ids


def test_a_dead_workers_jobs_are_freed_at_start_though_its_pid_runs(config, store, start_daemon, other_pid,
                                                                     tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    dead = f"testhost:{other_pid}"
    finished, cut, unstarted = leave_dead_worker(config, store, dead, side)
    judged = ops.judge_workers(store.workers(), config, utcnow())
    assert [(w["name"], w["alive"], w["dead"]) for w in judged] == [
        (dead, False, f"pid {other_pid} is another process now: none holds the worker's journal")]
    daemon = start_daemon("-n", "1")
    daemon.wait_ready()
    wait_for(lambda: store.jobs() == [], what="the dead worker's jobs settled and run")
    assert sorted(jobs.runs(side)) == ["cut", "unstarted"]  # the finished one deleted, not run again
    assert f"released 2 job(s) of {dead}: worker {dead} gone: found dead at daemon start" in daemon.log(), daemon.log()
    assert not os.path.exists(journal.path_of(folder_of(config), dead))
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0


def test_a_live_worker_silent_in_the_database_keeps_its_jobs(config, store, start_daemon, tmp_path: Path) -> None:
    """A worker of this host whose heartbeat went silent (its supervisor hung, say) but which
    holds its journal is alive: its jobs stay its own until it is gone, then are freed."""
    side = str(tmp_path / "runs.txt")
    folder = folder_of(config)
    holder, name = hold(folder, "testhost:{pid}")
    try:
        ids = [Queue(config, store).enqueue(jobs.record, side, n) for n in range(2)]
        store.register_worker(name, "testhost", holder.pid)
        assert len(store.reserve(name, Filters(), limit=2).jobs) == 2
        with store.engine.begin() as conn:
            conn.execute(update(wk).where(wk.c.name == name).values(last_seen=utcnow() - timedelta(seconds=60)))
        daemon = start_daemon("-n", "1", env={"DJ_HEARTBEAT_INTERVAL": "0.2", "DJ_HEARTBEAT_TIMEOUT": "5"})
        daemon.wait_ready()
        wait_for(lambda: f"worker {name} is not gone: a live process holds its journal" in daemon.log(),
                 what="the silent worker judged alive")
        assert [job.locked_by for job in store.jobs()] == [name, name]
    finally:
        holder.kill()
        holder.wait()
    wait_for(lambda: store.jobs() == [], what="its jobs freed and run once it is gone")
    assert sorted(jobs.runs(side)) == ["0", "1"]
    assert ids and f"released 2 job(s) of {name}: worker {name} lost: no heartbeat for 5s" in daemon.log()


def test_a_new_worker_takes_back_what_a_dead_one_of_its_name_left(config, store, tmp_path: Path, caplog) -> None:
    """Its pid was the dead worker's, so is its name: in its registration it settles what that
    one left, as its journal tells, before reserving anything, and then keeps its own journal.
    (The worker runs in this process, whose pid plays the reused one.)"""
    config = config.replace(hostname="testhost")
    name, folder = f"testhost:{os.getpid()}", folder_of(config)
    side = str(tmp_path / "runs.txt")
    finished, cut, unstarted = leave_dead_worker(config, store, name, side)
    hold = forked.hold_journal(folder, name)
    assert hold is not None
    try:
        with Worker(config, store, board=Board(), parent_pid=os.getppid()) as worker:
            worker.register(folder)
            assert worker.journal is not None and journal.read(folder, name) == set()
        assert f"worker {name}: took back 2 job(s) a dead worker of its name held" in caplog.text
        rows = {job.id: job for job in store.jobs()}
        assert sorted(rows) == [cut, unstarted]  # the finished one deleted, not run again
        assert rows[cut].locked_by is None and rows[cut].attempts == 1
        assert rows[cut].last_error == f"worker {name} gone: found holding it when a new worker took its pid (attempt 1)"
        assert rows[unstarted].locked_by is None and rows[unstarted].attempts == 0
        assert [(w["name"], w["pid"]) for w in store.workers()] == [(name, os.getpid())]
        assert jobs.runs(side) == []
    finally:
        os.close(hold)


def test_a_pending_release_of_a_name_a_new_worker_took_is_dropped(config, store, tmp_path: Path) -> None:
    """The supervisor reaped a worker while the database was down (its release pending), then
    forked a new one that got the same pid: the release must not free the new worker's jobs;
    the new worker takes back what the dead one left itself (``Worker.register``)."""
    upkeep = Upkeep(config, Metrics(), folder_of(config))
    try:
        name = f"{config.hostname}:4321"
        upkeep.pending.append(Release(name, f"worker {name} killed by SIGKILL"))  # as when guarded failed
        Queue(config, store).enqueue(jobs.record, str(tmp_path / "runs.txt"), 1)
        assert len(store.reserve(name, Filters(), limit=1).jobs) == 1  # the new worker's job
        upkeep.forget(name)  # what Supervisor._spawn does once the new worker bears the name
        upkeep.retry_pending()
        assert [job.locked_by for job in store.jobs()] == [name]
    finally:
        upkeep.store.dispose()
