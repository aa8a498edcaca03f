"""Order survives restarts and crashes: parked and freed jobs keep their place in the queue."""
from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import update

from dj_daemon.api import Queue
from dj_daemon.schema import delayed_jobs
from dj_daemon.worker import Worker
from long_jobs import ops
from tests import jobs
from tests.long_jobs.conftest import long_jobs
from tests.long_jobs.order_jobs import copy_step
from tests.process.daemon import wait_for


def steps_of(side: str, dataset_id: int) -> list[str]:
    """The start and end tokens one dataset's steps recorded, in the order they ran."""
    return [token for token in jobs.runs(side) if token.split("-")[1].split(".")[0] == str(dataset_id)]


def expected(dataset_id: int, steps: range) -> list[str]:
    return [f"{edge}-{dataset_id}.{step}" for step in steps for edge in ("start", "end")]


def test_restart_puts_parked_jobs_back_before_the_newer_jobs_of_their_strand(
        config, store, sentinel_dir, start_daemon, subprocess_env, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    for step in (1, 2):
        queue.enqueue(copy_step, side, 7, step)
    queue.enqueue(copy_step, side, 8, 1)
    ops.drain(config)
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert Counter(r["state"] for r in store.tracked(limit=None)) == {"deferred": 3}
    for step in (3, 4, 5):  # enqueued during the maintenance, their turn not come yet
        queue.enqueue(copy_step, side, 7, step)
    queue.enqueue(copy_step, side, 8, 2)
    restarted = long_jobs(subprocess_env, "restart")
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.strip().splitlines()[-1] == "3 jobs re-enqueued"
    start_daemon("-n", "2")
    wait_for(lambda: len(jobs.runs(side)) == 14, what="seven steps")
    assert steps_of(side, 7) == expected(7, range(1, 6))
    assert steps_of(side, 8) == expected(8, range(1, 3))

    # again with the daemon running: its workers park the steps, and must not park them again
    # while restart puts them back before it removes the sentinel files
    drained = long_jobs(subprocess_env, "drain")
    assert drained.returncode == 0, drained.stderr
    for step in (6, 7, 8):
        queue.enqueue(copy_step, side, 7, step)
    wait_for(lambda: store.tracked_counts()["deferred"] == 3, what="three steps parked")
    restarted = long_jobs(subprocess_env, "restart")
    assert restarted.returncode == 0 and "3 jobs re-enqueued" in restarted.stdout, restarted.stderr
    wait_for(lambda: len(jobs.runs(side)) == 20, what="the parked steps run")
    assert steps_of(side, 7) == expected(7, range(1, 9))
    wait_for(lambda: set(store.tracked_counts().items()) >= {("completed", 10), ("enqueued", 0)},
             what="all completed")
    assert not os.path.exists(sentinel_dir / "defer_jobs.txt")


def test_a_job_freed_from_a_killed_worker_runs_before_the_backlog_enqueued_after_it(
        config, store, start_daemon, tmp_path: Path) -> None:
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "flag")
    queue = Queue(config, store)
    daemon = start_daemon("-n", "1")
    daemon.wait_ready()
    queue.enqueue(jobs.sleep_until_flag, side, flag, 60)
    wait_for(lambda: jobs.runs(side) == ["started"], what="the long job running")
    [victim] = daemon.worker_pids()
    backlog = [f"b{n}" for n in range(20)]
    for token in backlog:
        queue.enqueue(jobs.record, side, token)
    os.kill(victim, signal.SIGKILL)
    Path(flag).touch()  # its second run ends at once
    wait_for(lambda: len(jobs.runs(side)) == 3 + len(backlog), what="everything run")
    assert jobs.runs(side) == ["started", "started", "done", *backlog]
    assert f"worker testhost:{victim} killed by SIGKILL" in daemon.log()


def test_a_parked_job_whose_id_was_given_again_comes_back_with_a_new_one(
        config, store, sentinel_dir, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue(copy_step, side, 9, 1)
    ops.drain(config)
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    [parked] = store.tracked(limit=None)
    place = parked["delayed_job_id"]
    assert parked["state"] == "deferred" and place is not None and store.jobs() == []
    # as an old SQLite table without AUTOINCREMENT does: the deleted highest id goes to the next job
    other = queue.enqueue(jobs.record, side, "other")
    store.transaction(lambda conn: conn.execute(update(delayed_jobs).where(delayed_jobs.c.id == other)
                                                .values(id=place)))
    result = ops.restart(store, config)
    assert (len(result.reenqueued), result.moved) == (1, 1)
    [back] = store.tracked(limit=None)
    assert back["state"] == "enqueued" and back["delayed_job_id"] not in (None, place)
    assert sorted(job.id for job in store.jobs()) == [place, back["delayed_job_id"]]
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert sorted(jobs.runs(side)) == ["end-9.1", "other", "start-9.1"]
