"""The worker loop in-process on a real database: outcomes, retries, limits, hooks, bad handlers."""
from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from dj_daemon.api import JobFunction, Queue
from dj_daemon.config import Config
from dj_daemon.job import utcnow
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Store
from dj_daemon.worker import Worker
from tests import jobs


def work_off(config: Config, store: Store) -> tuple[int, int]:
    stats = Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    return stats.succeeded, stats.failed


@pytest.fixture
def queue(config: Config, store: Store) -> Queue:
    return Queue(config, store)


@pytest.fixture
def side(tmp_path: Path) -> str:
    return str(tmp_path / "runs.txt")


def test_success_runs_once_and_deletes_the_row(queue: Queue, config, store, side) -> None:
    queue.enqueue(jobs.record, side, "a")
    queue.enqueue(jobs.decorated, side, "b")
    assert work_off(config, store) == (2, 0)
    assert sorted(jobs.runs(side)) == ["a", "b"] and store.jobs() == []


def test_always_failing_job_ends_failed_after_max_attempts(queue: Queue, config, store, side) -> None:
    config = config.replace(max_attempts=3, backoff_scale=0)
    job_id = queue.enqueue(jobs.always_fails, side)
    for _ in range(5):
        work_off(config, store)
    failed = store.get(job_id)
    assert failed.failed_at is not None and failed.attempts == 3
    assert failed.last_error.startswith("ValueError: this job always fails")
    assert "in always_fails" in failed.last_error  # the traceback is kept
    assert jobs.runs(side) == ["ran"] * 3


def test_failure_reschedules_with_delayed_job_backoff(queue: Queue, config, store, side) -> None:
    job_id = queue.enqueue(jobs.always_fails, side)
    before = utcnow()
    work_off(config, store)
    after = utcnow()  # the failure came between the two, however long the run took on a busy host
    job = store.get(job_id)
    assert job.attempts == 1 and job.failed_at is None and job.locked_by is None
    backoff = timedelta(seconds=6)  # 1**4 + 5 s
    assert before + backoff - timedelta(seconds=0.1) < job.run_at < after + backoff + timedelta(seconds=0.1)


def test_job_class_overrides_attempts_and_backoff(queue: Queue, config, store, side) -> None:
    job_id = queue.enqueue(jobs.flaky, side)  # @job(max_attempts=2, backoff=0)
    work_off(config, store)
    assert store.get(job_id).run_at <= utcnow()  # backoff 0: due again at once
    work_off(config, store)
    failed = store.get(job_id)
    assert failed.failed_at is not None and failed.attempts == 2 and jobs.runs(side) == ["ran", "ran"]


def test_decorator_defaults_and_inline_call(queue: Queue, store, side) -> None:
    assert jobs.decorated(side, "inline") == "inline" and jobs.runs(side) == ["inline"]
    new = queue.prepare(jobs.decorated, side, "x")
    assert (new.queue, new.priority) == ("mail", 3)
    job = store.get(queue.enqueue(jobs.decorated, side, "y", priority=0))
    assert (job.queue, job.priority) == ("mail", 0)


def test_run_at_callable_defers_the_job(queue: Queue, config, store, side) -> None:
    tomorrow = JobFunction(jobs.record, run_at=lambda: timedelta(days=1))
    job_id = queue.enqueue_call(jobs.record, (side, "later"), run_at=tomorrow.run_at)
    assert store.get(job_id).run_at > utcnow() + timedelta(hours=23)
    assert work_off(config, store) == (0, 0)


def test_max_run_time_stops_the_job_and_counts_a_failure(queue: Queue, config, store, side) -> None:
    config = config.replace(max_run_time=0.5)
    job_id = queue.enqueue(jobs.sleep_then_record, side, 10)
    started = time.monotonic()
    assert work_off(config, store) == (0, 1)
    assert time.monotonic() - started < 5
    job = store.get(job_id)
    assert job.attempts == 1 and job.last_error.startswith("JobTimeout: job exceeded max run time of 0.5 s")
    assert jobs.runs(side) == ["started"]


@pytest.mark.parametrize("fail, expected", [
    (False, ["before", "perform", "success", "after"]),
    (True, ["before", "perform", "error", "after", "failure"]),
])
def test_hooks(queue: Queue, config, store, fail, expected) -> None:
    jobs.EVENTS.clear()
    queue.enqueue(jobs.hooked, fail)
    work_off(config, store)
    assert jobs.EVENTS == expected


def test_perform_object(queue: Queue, config, store, side) -> None:
    job_id = queue.enqueue(jobs.Newsletter(side, "hello", ["a@x", "b@x"]))
    assert store.get(job_id).queue == "newsletters"
    assert work_off(config, store) == (1, 0)
    assert jobs.runs(side) == ["a@x:hello", "b@x:hello"]


def _insert_handler(store: Store, handler: str) -> int:
    now = utcnow()
    with store.engine.begin() as conn:
        return conn.execute(insert(dj).values(handler=handler, priority=0, attempts=0, run_at=now,
                                              created_at=now, updated_at=now)).inserted_primary_key[0]


@pytest.mark.parametrize("handler, error", [
    ("{not json", "malformed handler"),
    ('{"target": "tests.jobs:no_such_function", "args": [], "kwargs": {}}', "cannot import tests.jobs:no_such_function"),
    ('{"target": "tests.side_effect_module:run", "args": [], "kwargs": {}}', "not in allowed_modules"),
    ('{"target": "tests.jobs:noop", "args": {}, "kwargs": []}', "args must be a list"),
    ('["target"]', "not a JSON object"),
])
def test_bad_handler_fails_for_good_and_the_worker_goes_on(
        queue: Queue, config, store, side, handler, error, tmp_path, monkeypatch) -> None:
    trace = tmp_path / "imported.txt"
    monkeypatch.setenv("DJ_TEST_IMPORT_TRACE", str(trace))
    config = config.replace(allowed_modules=("tests.jobs",))
    bad = _insert_handler(store, handler)
    Queue(config, store).enqueue(jobs.record, side, "after-bad")
    assert work_off(config, store) == (1, 1)
    job = store.get(bad)
    assert job.failed_at is not None and job.attempts == 1
    assert job.last_error.startswith("DeserializationError: ") and error in job.last_error
    assert jobs.runs(side) == ["after-bad"] and not trace.exists()


def test_worker_takes_only_its_queues(queue: Queue, config, store, side) -> None:
    queue.enqueue(jobs.record, side, "mail", queue="mail")
    queue.enqueue(jobs.record, side, "other", queue="other")
    assert work_off(config.replace(queues=("mail",)), store) == (1, 0)
    assert jobs.runs(side) == ["mail"]
