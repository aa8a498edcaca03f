"""Cancelling (Oban's cancel_job, Solid Queue's discard): a waiting job is removed, a running one is
asked to stop through its real daemon (signal, flag, kill after ``cancel_grace``); either way it is
recorded as cancelled and never retried. On SQLite and MariaDB, through the installed CLI."""
from __future__ import annotations

import subprocess
import time

import pytest
from sqlalchemy import func, select

from dj_daemon.api import Queue
from dj_daemon.errors import UnknownJobError
from dj_daemon.schema import cancel_requests as cr, tracked_jobs as tj, unique_keys as uk
from dj_daemon.worker import Worker
from tests.conftest import bin_path
from tests.peers import jobs
from tests.process.daemon import wait_for


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("delayed_job"), *args], env=env, capture_output=True, text=True, timeout=60)


def state_of(store, job_id: int) -> tuple[str, str | None]:
    """A tracked job's state and last error, found by the queue id it had."""
    with store.engine.connect() as conn:
        row = conn.execute(select(tj.c.state, tj.c.last_error).order_by(tj.c.id.desc())).first()
    return tuple(row)


def rows(store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_waiting_job_is_removed_and_its_key_freed(config, store, subprocess_env, tmp_path) -> None:
    queue = Queue(config, store)
    job_id = queue.enqueue_call(jobs.cooperative, ("t1", str(tmp_path / "x")), unique_key="one")
    result = cli(subprocess_env, "jobs", "cancel", str(job_id))
    assert (result.returncode, result.stdout) == (0, f"cancelled job {job_id}\n"), result.stderr
    assert store.jobs() == [] and rows(store, uk) == 0
    assert state_of(store, job_id)[0] == "cancelled"
    assert queue.enqueue(jobs.noop, unique_key="one") != job_id
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert jobs.notes(str(tmp_path / "x")) == []  # never ran


def test_unknown_and_failed_jobs_are_one_line_errors(config, store, subprocess_env) -> None:
    result = cli(subprocess_env, "jobs", "cancel", "987654")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines() == ["delayed_job: error: no job with id 987654"]
    failed = Queue(config, store).enqueue("tests.peers.jobs:missing")
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    result = cli(subprocess_env, "jobs", "cancel", str(failed))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "has failed for good" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(UnknownJobError, match="no job with id 987654"):
        Queue(config, store).cancel(987654)


def _start_running(config, store, start_daemon, tmp_path, target, grace: str):
    path = str(tmp_path / "notes")
    job_id = Queue(config, store).enqueue_call(target, ("tok", path))
    daemon = start_daemon("-n", "1", env={"DJ_CANCEL_GRACE": grace})
    daemon.wait_ready()
    wait_for(lambda: jobs.notes(path) == ["started"], what="the job started")
    time.sleep(0.3)  # its worker's "busy" report reaches the supervisor
    return job_id, path, daemon


def test_a_running_job_that_checks_the_flag_stops_within_the_grace(config, store, start_daemon, subprocess_env,
                                                                   tmp_path) -> None:
    job_id, path, daemon = _start_running(config, store, start_daemon, tmp_path, jobs.cooperative, "60")
    pids = daemon.worker_pids()
    asked = time.monotonic()
    result = cli(subprocess_env, "jobs", "cancel", str(job_id))
    assert result.returncode == 0 and "is asked to stop" in result.stdout, result.stderr
    wait_for(lambda: store.jobs() == [], timeout=30, what="the cancelled job's row gone")
    assert time.monotonic() - asked < 30  # well within the 60 s grace: the job stopped itself
    assert jobs.notes(path) == ["started", "stopped"]
    assert state_of(store, job_id) == ("cancelled", "cancelled")
    assert rows(store, cr) == 0
    assert daemon.worker_pids() == pids  # not killed
    time.sleep(2)
    assert jobs.notes(path) == ["started", "stopped"] and store.jobs() == []  # never retried
    assert "job cancelled id=" in daemon.log()


def test_a_running_job_that_ignores_the_flag_is_killed_after_the_grace(config, store, start_daemon,
                                                                       subprocess_env, tmp_path) -> None:
    job_id, path, daemon = _start_running(config, store, start_daemon, tmp_path, jobs.stubborn, "1.5")
    pids = daemon.worker_pids()
    asked = time.monotonic()
    assert cli(subprocess_env, "jobs", "cancel", str(job_id)).returncode == 0
    wait_for(lambda: store.jobs() == [], timeout=30, what="the killed job's row gone")
    assert time.monotonic() - asked >= 1.5
    assert state_of(store, job_id)[0] == "cancelled"
    assert rows(store, cr) == 0
    wait_for(lambda: len(daemon.worker_pids()) == 1 and daemon.worker_pids() != pids, what="a new worker")
    time.sleep(2)
    assert jobs.notes(path) == ["started"] and store.jobs() == []  # killed, never retried
    assert "still running after cancel_grace" in daemon.log()


def test_the_supervisor_signals_once_then_kills_after_the_grace_and_redoes_moved_requests() -> None:
    """``Canceller.actions``: a worker busy with its cancelled job gets SIGUSR1 once, SIGKILL once the
    grace is over; one not (yet) busy with it gets nothing; a request whose job another worker
    holds now, or nobody, is redone; a request that went is forgotten."""
    import signal

    from dj_daemon.cancel import Canceller
    canceller = Canceller()
    requests = [(1, "h:10", "h:10"), (2, "h:11", "h:11"), (3, "h:12", None), (4, "h:13", "h:14")]
    busy = {"h:10": 1, "h:11": 9}
    assert canceller.actions(requests, busy, grace=5, now=100.0) == ([("h:10", signal.SIGUSR1, 1)], [3, 4])
    assert canceller.actions(requests, busy, grace=5, now=103.0) == ([], [3, 4])
    assert canceller.actions(requests, busy, grace=5, now=105.0) == ([("h:10", signal.SIGKILL, 1)], [3, 4])
    assert canceller.actions([], busy, grace=5, now=106.0) == ([], []) and canceller.signalled == {}


def test_a_job_running_on_another_host_is_stopped_by_that_hosts_daemon(config, store, start_daemon, subprocess_env,
                                                                        tmp_path) -> None:
    """Two daemons of two host names; the job runs under host-b's, the cancel is asked from host-a:
    host-b's supervisor reads the request from the database and stops it; host-a's does nothing."""
    path = str(tmp_path / "notes")
    job_id = Queue(config, store).enqueue_call(jobs.cooperative, ("far", path), queue="b")
    daemons = {name: start_daemon("-n", "1", env={"DJ_HOSTNAME": f"host-{name}", "DJ_QUEUES": name,
                                                  "DJ_CANCEL_GRACE": "60"}) for name in "ab"}
    for daemon in daemons.values():
        daemon.wait_ready()
    wait_for(lambda: jobs.notes(path) == ["started"], what="the job started on host-b")
    time.sleep(0.3)  # its worker's "busy" report reaches its supervisor
    result = cli({**subprocess_env, "DJ_HOSTNAME": "host-a"}, "jobs", "cancel", str(job_id))
    assert result.returncode == 0 and "is asked to stop" in result.stdout, result.stderr
    wait_for(lambda: store.jobs() == [], timeout=30, what="the cancelled job's row gone")
    assert jobs.notes(path) == ["started", "stopped"] and state_of(store, job_id)[0] == "cancelled"
    wait_for(lambda: "job cancelled id=" in daemons["b"].log(), what="host-b's worker logging it")  # after the commit
    assert "job cancelled" not in daemons["a"].log()
    assert rows(store, cr) == 0


def test_the_supervisor_reads_no_request_while_its_workers_stay_idle() -> None:
    """``Canceller.turn``: a request names the worker holding the job, so after a read that found
    none, no read while every worker stays idle with nothing done (an idle daemon sends none);
    one again once a worker is busy, has finished a job, is replaced, or the last read found a
    request."""
    from dj_daemon.cancel import Canceller
    from dj_daemon.reports import Slot

    canceller, reads, answer = Canceller(), [], []

    def turn(*slots: Slot) -> int:
        canceller.next_read = 0.0  # READ_EVERY has passed
        canceller.turn(lambda: reads.append(1) or list(answer), lambda job_id: None, slots, lambda *a: None, 5)
        return len(reads)

    idle = Slot(10, "h:10", 0, 0, 0.0)
    assert turn(idle) == 1 and turn(idle) == 1 and turn(idle) == 1
    busy = Slot(10, "h:10", 0, 0, 0.0)
    busy.board.busy(7)
    assert turn(busy) == 2 and turn(busy) == 3
    done = Slot(10, "h:10", 0, 0, 0.0)
    done.board.ended(True)
    assert turn(done) == 4 and turn(done) == 4
    assert turn(done, Slot(11, "h:11", 0, 0, 0.0)) == 5  # a new worker
    answer.append((7, "h:12", None))
    assert turn(done) == 6 and turn(done) == 7  # a request stands: read every time
