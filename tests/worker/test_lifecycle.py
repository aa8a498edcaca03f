"""A worker's own resources: it refuses a thread it cannot stop jobs in, and ``close()`` frees
its wake pipe, its wake-up fd and its batch guard's thread."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from dj_daemon.api import Queue
from dj_daemon.errors import WorkerError
from dj_daemon.worker import Worker
from tests import jobs


def test_a_worker_built_in_a_thread_is_refused_before_any_job(config, store, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    job_id = Queue(config, store).enqueue(jobs.record, side, "never")
    raised: list[BaseException] = []

    def in_a_thread() -> None:
        try:
            Worker(config, store, name="testhost:1").run(exit_when_empty=True)
        except BaseException as exc:  # the thread hands its outcome to the test
            raised.append(exc)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(30)
    assert len(raised) == 1 and isinstance(raised[0], WorkerError), raised
    assert "main thread" in str(raised[0])
    job = store.get(job_id)
    assert (job.attempts, job.locked_by, job.last_error) == (0, None, None)
    assert jobs.runs(side) == []


def guard_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "release-if-long"]


def assert_closed(*fds: int) -> None:
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_close_stops_the_guard_thread_and_closes_the_pipe(config, store, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    Queue(config, store).enqueue(jobs.record, side, "ran")
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    others = guard_threads()  # of earlier tests' workers, never closed
    try:
        with Worker(config, store, name="testhost:1") as worker:
            worker.install_signal_handlers()
            worker.run(exit_when_empty=True)  # the first batch starts the guard's thread
            fds = (worker._wake_r, worker._wake_w)
            threads = [thread for thread in guard_threads() if thread not in others]
            assert len(threads) == 1 and threads[0].is_alive()
        assert not threads[0].is_alive() and threads[0] not in guard_threads()
        assert_closed(*fds)
        assert signal.set_wakeup_fd(-1) == -1  # the closed pipe is no longer the wake-up fd
        worker.close()  # again: nothing left to free
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert jobs.runs(side) == ["ran"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_close_without_a_batch_closes_the_pipe(config, store) -> None:
    worker = Worker(config, store, name="testhost:1")
    fds = (worker._wake_r, worker._wake_w)
    worker.close()
    assert_closed(*fds)
