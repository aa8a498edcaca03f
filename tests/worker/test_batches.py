"""Batches: a long job gives back the rest of its batch; finished jobs ride on the next reservation."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dj_daemon import batch
from dj_daemon.api import Queue
from dj_daemon.errors import DatabaseError
from dj_daemon.store import Filters
from dj_daemon.worker import Worker
from tests import jobs


def test_a_long_job_gives_back_the_rest_of_its_batch(config, store, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue(jobs.sleep_then_record, side, 2.0, priority=0)
    quick = [queue.enqueue(jobs.record, side, n, priority=1) for n in range(5)]
    worker = Worker(config, store, name="testhost:1")
    batch = store.reserve(worker.name, Filters(), limit=10).jobs
    assert len(batch) == 6
    seen: dict[str, object] = {}

    def watch() -> None:  # jobs run in the main thread (SIGALRM deadline), so the watcher is here
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not any(store.get(i).locked_by for i in quick):
                seen["runs_when_released"] = jobs.runs(side)
                seen["taken"] = sorted(j.id for j in store.reserve("testhost:2", Filters(), limit=10).jobs)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    worker._run_batch(batch)
    watcher.join(10)
    assert seen["runs_when_released"] == ["started"]  # given back while the long job still ran
    assert seen["taken"] == quick
    assert jobs.runs(side) == ["started", "done"]  # the first worker ran none of them
    assert worker.batch.current == 1


def test_batches_grow_and_completions_ride_on_the_next_reservation(config, store, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue_many(queue.prepare(jobs.record, side, n) for n in range(100))
    worker = Worker(config, store, name="testhost:1")
    stats = worker.run(exit_when_empty=True)
    assert stats.succeeded == 100 and worker.batch.current > 8 and store.jobs() == []
    assert sorted(map(int, jobs.runs(side))) == list(range(100))


class _HeldRelease:
    """The real store's ``release``, held at its start until the test lets it go (or fails it)."""

    def __init__(self, store, fail: bool = False) -> None:
        self.store, self.fail = store, fail
        self.entered, self.go = threading.Event(), threading.Event()

    def release(self, jobs_) -> None:
        self.entered.set()
        assert self.go.wait(10)
        if self.fail:
            raise DatabaseError("database error on sqlite:///x: disk I/O error")
        self.store.release(jobs_)


def _armed_rest(config, store, tmp_path: Path, monkeypatch, fail: bool = False):
    monkeypatch.setattr(batch, "LONG_JOB", 0.05)
    queue = Queue(config, store)
    for n in range(4):
        queue.enqueue(jobs.record, str(tmp_path / "runs.txt"), n)
    held = store.reserve("testhost:1", Filters(), limit=4).jobs
    release = _HeldRelease(store, fail)
    guard = batch.ReleaseIfLong(release)  # type: ignore[arg-type]
    guard.arm(held[1:])
    return guard, release, held


@pytest.mark.parametrize("fail", [False, True], ids=["given_back", "give_back_failed"])
def test_a_job_ending_during_the_give_back_waits_for_its_outcome(config, store, tmp_path, monkeypatch,
                                                                  fail: bool) -> None:
    """The thread took the claim: the worker's ``disarm`` returns only once the give-back is over,
    True if it held (the rest is not to run here), False if it failed (the rest is still ours)."""
    guard, release, held = _armed_rest(config, store, tmp_path, monkeypatch, fail)
    try:
        assert release.entered.wait(10)
        answer: list[bool] = []
        disarming = threading.Thread(target=lambda: answer.append(guard.disarm()))
        disarming.start()
        disarming.join(0.3)
        assert disarming.is_alive() and answer == []  # waiting for the outcome, not guessing it
        release.go.set()
        disarming.join(10)
        assert answer == [not fail]
        holders = {store.get(job.id).locked_by for job in held[1:]}
        assert holders == ({"testhost:1"} if fail else {None})
    finally:
        release.go.set()
        guard.stop()


def test_a_job_ending_first_keeps_its_rest(config, store, tmp_path, monkeypatch) -> None:
    """Disarmed before its due time, the rest is never given back, even once that time has passed."""
    guard, release, held = _armed_rest(config, store, tmp_path, monkeypatch)
    try:
        assert guard.disarm() is False
        time.sleep(0.3)
        assert not release.entered.is_set()
        assert {store.get(job.id).locked_by for job in held} == {"testhost:1"}
    finally:
        release.go.set()
        guard.stop()
