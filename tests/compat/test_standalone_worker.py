"""delayed_job's standalone worker: it takes back its own locks, and survives reservation errors.

Each test runs the real ``delayed_job`` command as a subprocess (or the real
``Worker`` in this process) on a real database, SQLite and MariaDB, and makes
it fail for real: SIGKILL, a table renamed away under its feet, a TCP relay
cut. Each docstring names the delayed_job behaviour it matches, and where we
differ on purpose, how (see ``dj_daemon.standalone``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text, update

from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Store, open_store
from dj_daemon.worker import Worker
from tests import jobs
from tests.cli.test_database_patience import last_line_is_the_error, workoff_cut_mid_job
from tests.cli.test_delayed_job_cli import assert_one_line_error
from tests.conftest import SERVERS, bin_path
from tests.faults.test_db_outage import relay  # noqa: F401 (the fixture: MariaDB behind a TCP relay)
from tests.process.daemon import wait_for

HANG_GUARD_S = 60
AN_HOUR = "3600"


@pytest.fixture
def env(subprocess_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A standalone worker's environment: its journal folder, and an hour of max_run_time (a lock
    taken back sooner than that was not taken back by its age)."""
    return {**subprocess_env, "DJ_JOURNAL_DIR": str(tmp_path / "journal"), "DJ_MAX_RUN_TIME": AN_HOUR}


class Worker_:
    """``delayed_job <args>`` in its own session, its stderr in a file the test can read while it runs."""

    def __init__(self, env: dict[str, str], tmp_path: Path, *args: str) -> None:
        self.log_path = tmp_path / f"worker-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w+", encoding="utf-8")
        self.proc = subprocess.Popen([bin_path("delayed_job"), *args], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def finish(self, signum: int | None = signal.SIGTERM) -> int:
        """Its exit code, after ``signum`` (None: it ends by itself)."""
        if signum is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signum)
        code = self.proc.wait(timeout=HANG_GUARD_S)
        self._log.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator:
    started: list[Worker_] = []

    def start(*args: str, environment: dict[str, str] | None = None) -> Worker_:
        worker = Worker_(environment or env, tmp_path, *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def rename_table(store: Store, old: str, new: str) -> None:
    """The queue's table goes away (or comes back) under a running worker: a real database error."""
    with store.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def run_until_ready(worker: Worker_, side: str, token: str, count: int = 1) -> None:
    wait_for(lambda: jobs.runs(side).count(token) >= count or worker.proc.poll() is not None,
             timeout=HANG_GUARD_S, what=f"{token!r} recorded")
    assert worker.proc.poll() is None, worker.log()


def test_killed_worker_restarted_under_its_name_takes_back_its_jobs_at_once(config, store, workers,
                                                                           tmp_path: Path) -> None:
    """delayed_job's ready clause takes jobs "locked by me": a worker killed and started again
    under the same name picks up what it had locked at once, not after max_run_time.

    As the daemon does for a worker it saw die (``Store.worker_gone``), not as delayed_job: the
    job it was running gets an attempt counted (delayed_job runs it again uncounted), and the
    job it had finished but not yet deleted is deleted, not run again (its journal lists it).
    """
    side, warm, flag = str(tmp_path / "runs.txt"), str(tmp_path / "warm.txt"), str(tmp_path / "flag")
    queue = Queue(config, store)
    worker = workers("work", "--name", "w1")
    for n in (1, 2):  # two quick jobs alone: the next reservation takes two jobs at once
        queue.enqueue(jobs.record, warm, n)
        run_until_ready(worker, warm, str(n))
    queue.enqueue_many([queue.prepare(jobs.record, side, "finished", priority=1),
                        queue.prepare(jobs.sleep_until_flag, side, flag, 3600, priority=2)])
    run_until_ready(worker, side, "started")
    rows = {job.name: job for job in store.jobs()}
    finished, in_hand = rows["tests.jobs:record"], rows["tests.jobs:sleep_until_flag"]
    assert finished.locked_by == in_hand.locked_by == "testhost:w1", "both jobs in one batch"
    assert worker.finish(signal.SIGKILL) == -signal.SIGKILL

    restarted_at = time.monotonic()
    again = workers("work", "--name", "w1")
    run_until_ready(again, side, "started", count=2)
    taken_back_in = time.monotonic() - restarted_at
    job = store.get(in_hand.id)
    assert job.attempts == 1 and job.locked_by == "testhost:w1", job
    assert job.last_error == "worker testhost:w1 gone: found holding it at its restart (attempt 1)"
    with pytest.raises(Exception, match=f"no job with id {finished.id}"):
        store.get(finished.id)  # deleted, not run again
    Path(flag).touch()
    wait_for(lambda: jobs.runs(side).count("done") == 1, timeout=HANG_GUARD_S, what="the job done")
    assert again.finish() == 0, again.log()
    assert jobs.runs(side) == ["finished", "started", "started", "done"]
    assert taken_back_in < 30, f"took {taken_back_in:.1f}s (max_run_time {AN_HOUR}s)"
    assert "took back 1 job(s) its last run held" in again.log()
    assert store.jobs() == []


def test_a_second_live_worker_of_the_same_name_refuses_to_start(config, store, workers, env,
                                                                tmp_path: Path) -> None:
    """delayed_job trusts its worker names to be unique (host and pid); two live workers of one
    name would each take the other's locked jobs for their own. Here a name is held by one live
    process on its host: a second one ends with one line, and the first works on."""
    side = str(tmp_path / "runs.txt")
    first = workers("work", "--name", "w1")
    Queue(config, store).enqueue(jobs.record, side, "first")
    run_until_ready(first, side, "first")  # it holds the name
    second = subprocess.run([bin_path("delayed_job"), "workoff", "--name", "w1"], env=env, capture_output=True,
                            text=True, timeout=HANG_GUARD_S)
    assert_one_line_error(second, "a worker named testhost:w1 is already running on this host")
    assert first.proc.poll() is None, first.log()
    assert first.finish() == 0


def test_reservation_error_is_survived_and_work_resumes(config, store, workers, tmp_path: Path) -> None:
    """delayed_job's ``reserve_job`` rescues a reservation error, says so, and tries again at its
    next turn. Here ``work`` (and the daemon's workers) wait out any database error, however long,
    logging it once; the next reservation works once the database does."""
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    worker = workers("work")
    queue.enqueue(jobs.record, side, "before")
    run_until_ready(worker, side, "before")
    rename_table(store, "delayed_jobs", "delayed_jobs_away")
    wait_for(lambda: "retrying" in worker.log(), what="the reservation error logged")
    time.sleep(1.0)  # several failed reservations
    rename_table(store, "delayed_jobs_away", "delayed_jobs")
    queue.enqueue(jobs.record, side, "after")
    run_until_ready(worker, side, "after")
    assert worker.finish() == 0, worker.log()
    log = worker.log()
    assert log.count("retrying") == 1 and "database back after" in log, log
    assert jobs.runs(side) == ["before", "after"]


def test_lost_reservation_answer_keeps_the_jobs_place(config: Config, store: Store, tmp_path: Path) -> None:
    """delayed_job's ready clause also takes back what a reservation locked for this worker when
    its answer was lost with the connection (the commit landed). Here the reservation after a
    failed one unlocks such strays first, uncounted (never started): they run now, in order."""
    side = str(tmp_path / "runs.txt")
    job_id = Queue(config, store).enqueue(jobs.record, side, "stray")
    with store.engine.begin() as conn:  # what that reservation left: the row locked by us, just now
        conn.execute(update(dj).where(dj.c.id == job_id).values(locked_by="testhost:w", locked_at=store.clock()))
    rename_table(store, "delayed_jobs", "delayed_jobs_away")  # and the database failing meanwhile
    back = threading.Timer(1.0, rename_table, (store, "delayed_jobs_away", "delayed_jobs"))
    back.start()
    worker_store = open_store(config)
    try:
        with Worker(config, worker_store, "testhost:w") as worker:
            stats = worker.run(exit_when_empty=True)
    finally:
        back.join()
        worker_store.dispose()
    assert (stats.succeeded, jobs.runs(side)) == (1, ["stray"])
    assert store.jobs() == []


def test_workoff_ends_with_one_line_when_the_table_is_gone(config, store, workers, tmp_path: Path) -> None:
    """delayed_job's ``work_off`` raises ``FatalBackendError`` after 10 reservation errors in a
    row, instead of looping for ever. Here a bounded run (``workoff``, ``work --exit-on-complete``)
    ends with one line and exit 1: at once for an error no wait can fix, as a table gone."""
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "flag")
    Queue(config, store).enqueue(jobs.sleep_until_flag, side, flag, 60)
    worker = workers("workoff")
    run_until_ready(worker, side, "started")
    rename_table(store, "delayed_jobs", "delayed_jobs_away")
    Path(flag).touch()
    started = time.monotonic()
    assert worker.finish(None) == 1
    assert time.monotonic() - started < 20
    errors = [line for line in worker.log().splitlines() if line.startswith("delayed_job: error: ")]
    assert len(errors) == 1 and worker.log().strip().splitlines()[-1] == errors[0], worker.log()
    assert "delayed_jobs" in errors[0] and "their outcome not written" in errors[0], errors[0]
    rename_table(store, "delayed_jobs_away", "delayed_jobs")


@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_workoff_ends_after_its_patience_and_its_name_settles_the_rest(config, store, env, relay,
                                                                       tmp_path: Path) -> None:
    """delayed_job's ``FatalBackendError`` after reservation errors in a row, for an outage: here
    a bounded run waits ``database_patience`` (seconds: how long, not how many tries), then ends
    with one line. The job it finished meanwhile is not lost, nor run again: the worker's name,
    started again, deletes it (its journal lists it)."""
    side = str(tmp_path / "runs.txt")
    job_id, result, relayed_env = workoff_cut_mid_job(config, store, env, relay, tmp_path, "--name", "w1")
    last_line_is_the_error(result, "still failing after database_patience: 2s", "their outcome not written",
                           "until it starts again under that name")
    assert store.get(job_id).locked_by == "testhost:w1"
    relay.restore()
    again = subprocess.run([bin_path("delayed_job"), "workoff", "--name", "w1"], env=relayed_env, capture_output=True,
                           text=True, timeout=HANG_GUARD_S)
    assert again.returncode == 0, again.stderr
    assert jobs.runs(side) == ["started", "done"] and store.jobs() == []


def test_workoff_refuses_a_name_that_reads_as_a_pid(env) -> None:
    """delayed_job's ``--identifier`` is a number; ours is a name (``host:NAME``), and a number
    alone would read as the pid of a dead daemon worker, whose jobs a daemon frees."""
    result = subprocess.run([bin_path("delayed_job"), "workoff", "--name", "3"], env=env, capture_output=True,
                            text=True, timeout=HANG_GUARD_S)
    assert_one_line_error(result, "worker name '3'", "not a number alone")
