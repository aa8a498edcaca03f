"""Batches: a long job gives back the rest of its batch; finished jobs ride on the next reservation."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from dj_daemon.api import Queue
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
