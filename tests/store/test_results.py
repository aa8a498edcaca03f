"""Kept results (``store.results``) on every dialect: rows follow attempts, expire, are pruned a few at a time."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from dj_daemon.api import Queue
from dj_daemon.job import Job, utcnow
from dj_daemon.schema import results as rt
from dj_daemon.store import results
from dj_daemon.store.results import Status
from dj_daemon.worker import Worker
from tests import jobs

TTL = timedelta(hours=1)


def a_job(attempts: int = 0, worker: str = "host:1", job_id: int = 7) -> Job:
    now = utcnow()
    return Job(id=job_id, priority=0, attempts=attempts, handler='{"target":"x:y"}', queue=None, run_at=now,
               locked_at=now, locked_by=worker, created_at=now)


def test_attempts_errors_and_outcome(store) -> None:
    first, retried = a_job(0, "host:1"), a_job(2, "host:2")  # the second attempt's worker died unstarted
    started = store.transaction(lambda conn: results.start(conn, "7.t", first, utcnow()))
    assert started["status"] == Status.RUNNING.value and json.loads(started["worker_ids"]) == ["host:1"]
    assert store.transaction(lambda conn: results.add_error(conn, "7.t", {"exception_class_path": "a.B",
                                                                         "traceback": "tb"}))
    again = store.transaction(lambda conn: results.start(conn, "7.t", retried, utcnow()))
    assert json.loads(again["worker_ids"]) == ["host:1", "", "host:2"]  # one per attempt counted
    assert again["started_at"] == started["started_at"] and again["last_attempted_at"] > started["started_at"]
    now = utcnow()
    store.transaction(lambda conn: results.finish(conn, "7.t", retried, Status.SUCCESSFUL, now, TTL,
                                                  return_value={"n": 1}))
    row = store.transaction(lambda conn: results.get(conn, "7.t"))
    assert (row["status"], json.loads(row["return_value"]), row["expires_at"]) == ("SUCCESSFUL", {"n": 1}, now + TTL)
    assert [e["exception_class_path"] for e in json.loads(row["errors"])] == ["a.B"]
    assert row["handler"] == first.handler and row["enqueued_at"] == first.created_at


def test_a_job_refused_before_it_started_gets_its_row_at_finish(store) -> None:
    job = a_job()
    assert not store.transaction(lambda conn: results.add_error(conn, "7.t", {}))
    error = {"exception_class_path": "dj_daemon.errors.DeserializationError", "traceback": "refused"}
    store.transaction(lambda conn: results.finish(conn, "7.t", job, Status.FAILED, utcnow(), TTL, errors=[error]))
    row = store.transaction(lambda conn: results.get(conn, "7.t"))
    assert row["status"] == "FAILED" and json.loads(row["errors"]) == [error] and row["worker_ids"] == "[]"


def test_prune_deletes_a_few_expired_rows_oldest_first(store) -> None:
    now = utcnow()
    for n in range(results.PRUNE_BATCH + 3):  # expired, oldest first by n
        store.transaction(lambda conn: results.finish(conn, f"{n}.old", a_job(job_id=n), Status.SUCCESSFUL,
                                                      now - 2 * TTL + timedelta(seconds=n), TTL))
    store.transaction(lambda conn: results.start(conn, "100.running", a_job(job_id=100), now))
    store.transaction(lambda conn: results.finish(conn, "101.fresh", a_job(job_id=101), Status.SUCCESSFUL,
                                                  now, TTL))  # and prunes
    left = store.transaction(lambda conn: list(conn.execute(select(rt.c.id).order_by(rt.c.id)).scalars()))
    assert sorted(left) == sorted([f"{n}.old" for n in range(results.PRUNE_BATCH, results.PRUNE_BATCH + 3)]
                                  + ["100.running", "101.fresh"])


def test_ordinary_jobs_write_no_result(config, store, tmp_path) -> None:
    Queue(config, store).enqueue(jobs.record, str(tmp_path / "runs.txt"), "x")
    assert Worker(config, store, name="testhost:1").run(exit_when_empty=True).succeeded == 1
    assert store.transaction(lambda conn: conn.execute(select(func.count()).select_from(rt)).scalar()) == 0
