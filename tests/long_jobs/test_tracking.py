"""Tracked jobs in the store and the worker, in-process on every dialect."""
from __future__ import annotations

import os
from pathlib import Path

from dj_daemon.api import Queue
from dj_daemon.store import Filters
from dj_daemon.worker import Worker
from long_jobs import ops
from tests import jobs


def states(store) -> dict[str, str]:
    return {row["identifier"]: row["state"] for row in store.tracked()}


def work_off(config, store) -> None:
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)


def test_state_follows_the_queue(config, store, sentinel_dir, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config.replace(max_attempts=1), store)
    queue.enqueue(jobs.replicate, side, 1)
    jobs.submit.delay  # decorated, tracked on its dataset_id argument
    queue.enqueue(jobs.ReplicationCopy(side, 3))
    queue.enqueue(jobs.always_fails, side)
    row = store.tracked()[0]
    assert (row["job_class"], row["identifier"], row["gate"], row["state"]) == (
        "tests.jobs:replicate", "1", "defer", "enqueued")
    assert store.tracked()[1]["job_class"] == "tests.jobs:ReplicationCopy"
    work_off(config.replace(max_attempts=1), store)
    assert states(store) == {"1": "completed", "3": "completed"}
    assert store.tracked()[0]["finished_at"] is not None and store.tracked()[0]["hostname"] == "testhost"


def test_tracked_failure_ends_in_error(config, store, sentinel_dir, tmp_path) -> None:
    config = config.replace(max_attempts=2, backoff_scale=0)
    Queue(config, store).enqueue(jobs.ordered_step, str(tmp_path / "x"), 7, "not-a-number", "nan")
    work_off(config, store)
    row = store.tracked()[0]
    assert row["state"] == "error" and "TypeError" in row["last_error"]
    assert [job.id for job in store.jobs(failed=True)] == [row["delayed_job_id"]]
    resent = ops.resend(store, config, row["id"]).job_id  # the failed row makes way: never two rows for one job
    assert [job.id for job in store.jobs()] == [resent] and resent != row["delayed_job_id"]


def test_clear_leaves_tracked_jobs_in_error_saying_so(config, store, sentinel_dir, tmp_path) -> None:
    queue = Queue(config, store)
    queue.enqueue(jobs.replicate, str(tmp_path / "x"), 4)
    queue.enqueue(jobs.noop)
    assert store.clear() == 2
    row = store.tracked()[0]
    assert (row["state"], row["last_error"], row["delayed_job_id"]) == (
        "error", "cleared from the work queue by an operator", None)


def test_drain_parks_instead_of_running_and_restart_brings_back(config, store, sentinel_dir, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    for n in range(3):
        queue.enqueue(jobs.replicate, side, n)
        queue.enqueue(jobs.submit, side, 100 + n)
    queue.enqueue(jobs.record, side, "untracked")
    assert ops.drain(config).written == ["defer_jobs.txt", "hold-submissions.txt"]
    work_off(config, store)
    assert jobs.runs(side) == ["untracked"]
    rows = store.tracked()
    assert {r["state"] for r in rows if r["gate"] == "defer"} == {"deferred"}
    assert {(r["state"], r["hostname"]) for r in rows if r["gate"] == "hold"} == {("rejected_shutting_down", "testhost")}
    assert store.jobs() == []  # parked jobs left the work queue
    result = ops.restart(store, config)
    assert result.removed == ["defer_jobs.txt", "hold-submissions.txt"] and len(result.reenqueued) == 6
    work_off(config, store)
    assert sorted(jobs.runs(side)) == sorted(["untracked"] + [f"{e}-{n}" for e in ("start", "end")
                                                               for n in (0, 1, 2, 100, 101, 102)])
    assert set(states(store).values()) == {"completed"}


def test_restart_moves_the_named_hosts_rejections_with_its_own(config, store, sentinel_dir, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue(jobs.submit, side, 1)
    ops.drain(config)
    work_off(config.replace(hostname="oldhost"), store)
    assert store.tracked()[0]["hostname"] == "oldhost"
    assert ops.restart(store, config).reenqueued == []  # not this host's
    assert store.tracked()[0]["state"] == "rejected_shutting_down"
    ops.drain(config)
    queue.enqueue(jobs.submit, side, 2)
    work_off(config, store)
    assert [row["hostname"] for row in store.tracked(state="rejected_shutting_down")] == ["oldhost", "testhost"]
    moved = ops.restart(store, config, ("oldhost",)).reenqueued
    assert len(moved) == 2 and {row["hostname"] for row in store.tracked()} == {"testhost"}


def test_strand_holds_later_jobs_until_the_earlier_one_is_done(config, store, sentinel_dir, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    plain = queue.enqueue(jobs.noop)
    step1, step2, step3 = (queue.enqueue(jobs.ordered_step, side, 9, n, 0) for n in (1, 2, 3))
    elsewhere = queue.enqueue(jobs.ordered_step, side, 8, 1, 0)
    batches = [store.reserve("w1", Filters(), limit=10).jobs for _ in range(4)]
    # untracked jobs come in batches, each tracked job alone; steps 2 and 3 wait for step 1
    assert [[j.id for j in batch] for batch in batches] == [[plain], [step1], [elsewhere], []]
    job1 = batches[1][0]
    store.reschedule(job1, 1, "boom", store.clock())  # a retry keeps its place in the strand
    assert [j.id for j in store.reserve("w2", Filters(), limit=10).jobs] == [step1]
    store.reschedule(job1.__class__(**{**job1.__dict__, "locked_by": "w2"}), 2, "boom", None)  # failed for good
    assert [j.id for j in store.reserve("w3", Filters(), limit=10).jobs] == [step2]
    assert store.reserve("w4", Filters(), limit=10).jobs == []  # step 3 waits for step 2


def test_completed_is_written_when_the_job_ends(config, store, sentinel_dir, tmp_path: Path) -> None:
    """Not with the worker's next reservation: an operator reading the state sees it at once."""
    Queue(config, store).enqueue(jobs.replicate, str(tmp_path / "runs.txt"), 5)
    worker = Worker(config, store, name="testhost:1")
    job, = store.reserve(worker.name, Filters(), host="testhost").jobs
    assert states(store) == {"5": "running"}
    assert worker.run_job(job)
    assert states(store) == {"5": "completed"} and store.jobs() == []


def test_a_dangling_symlink_sentinel_parks_its_gate(config, store, sentinel_dir, tmp_path: Path) -> None:
    """Any entry at a sentinel's name drains, even a link to nothing: parked by mistake comes back
    with restart, cut off mid-run does not. The other gate stays open."""
    side = str(tmp_path / "runs.txt")
    (sentinel_dir / "defer_jobs.txt").symlink_to(tmp_path / "nowhere")
    queue = Queue(config, store)
    queue.enqueue(jobs.replicate, side, 1)
    queue.enqueue(jobs.submit, side, 2)
    work_off(config, store)
    assert states(store) == {"1": "deferred", "2": "completed"}
    assert jobs.runs(side) == ["start-2", "end-2"]
    assert ops.restart(store, config).removed == ["defer_jobs.txt"]
    assert not (tmp_path / "nowhere").exists() and not os.path.lexists(sentinel_dir / "defer_jobs.txt")
    work_off(config, store)
    assert states(store) == {"1": "completed", "2": "completed"}
