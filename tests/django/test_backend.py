"""Django tasks through ``DelayedJobBackend``, run by the real daemon, on SQLite and MariaDB."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from dj_daemon.schema import delayed_jobs as dj, results as rt
from dj_daemon.store import results
from tests.jobs import runs
from tests.process.daemon import wait_for


class Rollback(Exception):
    pass


def finished(task: Any, result_id: str, timeout: float = 20.0) -> Any:
    """The result once the daemon has finished the task."""
    wait_for(lambda: task.get_result(result_id).is_finished, timeout, f"task {result_id} finished")
    return task.get_result(result_id)


def job_id(result: Any) -> int:
    return int(result.id.partition(".")[0])


def result_ids(project: Any) -> list[str]:
    return project.store.transaction(lambda conn: list(conn.execute(select(rt.c.id)).scalars()))


def queued_priorities(backend: Any, enqueued: list[Any]) -> list[int]:
    """The queue rows' priorities as the backend's Django connection sees them (in its transaction)."""
    return backend.database.read(lambda conn: [results.queued(conn, job_id(r))["priority"] for r in enqueued])


def test_rollback_leaves_no_job_and_a_commit_runs(project, daemon, tasks) -> None:
    from django.db import transaction
    from django.tasks import TaskResultStatus
    from django.tasks.exceptions import TaskResultDoesNotExist

    add = project.task(tasks.add)
    with pytest.raises(Rollback), transaction.atomic(using=project.alias):
        rolled_back = add.enqueue(1, 2)
        assert add.get_result(rolled_back.id).status == TaskResultStatus.READY  # seen inside the transaction
        raise Rollback
    with transaction.atomic(using=project.alias):
        committed = add.enqueue(2, 3)
    assert committed.status == TaskResultStatus.READY and committed.enqueued_at is not None
    result = finished(add, committed.id)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 5
    assert result.enqueued_at <= result.started_at <= result.finished_at and result.errors == []
    assert result.args == [2, 3] and result.worker_ids == [result.worker_ids[0]] and result.attempts == 1
    with pytest.raises(TaskResultDoesNotExist):  # even where SQLite gave its job id to the next job
        add.get_result(rolled_back.id)
    token = rolled_back.id.partition(".")[2]
    assert not [job for job in project.store.jobs() if token in job.handler]
    assert rolled_back.id not in result_ids(project)
    wait_for(lambda: f"job done id={job_id(committed)} " in daemon.log(), 5, "the worker still logging")


def test_failure_is_ready_while_retries_remain_then_failed(project, daemon, tasks) -> None:
    from django.tasks import TaskResultStatus

    fails = project.task(tasks.fails)
    enqueued = fails.enqueue("boom")
    wait_for(lambda: project.store.get(job_id(enqueued)).attempts == 1, 20, "first attempt failed")
    between = fails.get_result(enqueued.id)  # MAX_ATTEMPTS 2, BACKOFF 0.5 s: one retry to come
    assert between.status == TaskResultStatus.READY and len(between.errors) == 1
    result = finished(fails, enqueued.id)
    assert result.status == TaskResultStatus.FAILED and result.attempts == 2 and len(result.errors) == 2
    for error in result.errors:  # one per attempt, as Django's TaskResult.errors
        assert error.exception_class is ValueError and "boom" in error.traceback and "in fails" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value
    assert project.store.get(job_id(enqueued)).failed_at is not None


def test_running_is_reported_while_the_task_runs(project, daemon, tasks, tmp_path: Path) -> None:
    from django.tasks import TaskResultStatus

    wait = project.task(tasks.wait_for)
    flag = tmp_path / "release"
    enqueued = wait.enqueue(str(flag))
    wait_for(lambda: wait.get_result(enqueued.id).status == TaskResultStatus.RUNNING, 20, "RUNNING")
    running = wait.get_result(enqueued.id)
    assert running.started_at is not None and running.finished_at is None and running.attempts == 1
    flag.touch()
    assert finished(wait, enqueued.id).return_value == "released"


def test_run_after_defers(project, daemon, tasks) -> None:
    from django.tasks import TaskResultStatus
    from django.utils import timezone

    run_after = timezone.now() + timedelta(seconds=1)
    add = project.task(tasks.add).using(run_after=run_after)
    enqueued = add.enqueue(1, 1)
    assert add.get_result(enqueued.id).status == TaskResultStatus.READY
    assert project.store.get(job_id(enqueued)).run_at == run_after.replace(tzinfo=None)  # UTC
    result = finished(add, enqueued.id)
    assert result.started_at >= run_after and result.task.run_after == run_after


def test_higher_priority_runs_first(project, daemon, tasks, tmp_path: Path) -> None:
    from django.db import transaction

    record, path = project.task(tasks.record), str(tmp_path / "order.txt")
    priorities = [-10, 0, 100, -100, 50]
    with transaction.atomic(using=project.alias):  # all visible to the daemon at once
        enqueued = [record.using(priority=p).enqueue(path, str(p)) for p in priorities]
        assert queued_priorities(record.get_backend(), enqueued) == [10, 0, -100, 100, -50]
    for priority, result in zip(priorities, enqueued):
        assert finished(record, result.id).task.priority == priority
    assert runs(path) == ["100", "50", "0", "-10", "-100"]


def test_queue_name_routes_and_is_validated(project, daemon, tasks, tmp_path: Path) -> None:
    from django.tasks import TaskResultStatus
    from django.tasks.exceptions import InvalidTask

    record, path = project.task(tasks.record), str(tmp_path / "runs.txt")
    mail = record.using(queue_name="mail").enqueue(path, "mail")
    default = record.enqueue(path, "default")
    finished(record, default.id)  # the daemon works queue "default" only
    assert record.get_result(mail.id).status == TaskResultStatus.READY
    assert project.store.get(job_id(mail)).queue == "mail"
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        record.using(queue_name="nope")
    assert project.workoff("--queues", "mail").returncode == 0
    assert record.get_result(mail.id).return_value == "mail" and runs(path) == ["default", "mail"]


def test_takes_context_gets_the_real_attempt(project, daemon, tasks) -> None:
    fails_once = project.task(tasks.fails_once)
    enqueued = fails_once.enqueue()
    result = finished(fails_once, enqueued.id)
    assert result.return_value == {"attempt": 2, "result_id": enqueued.id}
    assert result.attempts == 2 and [e.exception_class for e in result.errors] == [RuntimeError]


def test_a_task_outside_allowed_modules_fails_at_once(project, tasks, tmp_path: Path) -> None:
    from django.tasks import TaskResultStatus

    record = project.task(tasks.record).using(queue_name="mail")
    enqueued = record.enqueue(str(tmp_path / "never.txt"), "x")
    done = project.workoff("--queues", "mail", DJ_ALLOWED_MODULES="dj_daemon.contrib.django")
    assert done.returncode == 1, done.stdout + done.stderr
    job = project.store.get(job_id(enqueued))
    assert job.failed_at is not None and job.attempts == 1  # for good, although MAX_ATTEMPTS is 2
    result = record.get_result(enqueued.id)
    assert result.status == TaskResultStatus.FAILED and runs(str(tmp_path / "never.txt")) == []
    (error,) = result.errors
    assert error.exception_class_path == "dj_daemon.errors.DeserializationError"
    assert "tests.django.taskapp.tasks:record is not in allowed_modules" in error.traceback


def test_a_task_only_imported_into_an_allowed_module_is_refused(project, tasks, tmp_path: Path) -> None:
    """A row that names a task through a module that merely imported it: refused, never run."""
    from django.tasks import TaskResultStatus

    touch, proof = project.task(tasks.touch).using(queue_name="mail"), tmp_path / "touched"
    enqueued = touch.enqueue(str(proof))
    forged = project.store.get(job_id(enqueued)).handler.replace(
        '"tests.django.elsewhere:touch"', '"tests.django.taskapp.tasks:touch"')
    project.store.transaction(lambda conn: conn.execute(
        update(dj).where(dj.c.id == job_id(enqueued)).values(handler=forged)))
    done = project.workoff("--queues", "mail",
                           DJ_ALLOWED_MODULES="dj_daemon.contrib.django,tests.django.taskapp.tasks")
    assert done.returncode == 1, done.stdout + done.stderr
    job = project.store.get(job_id(enqueued))
    assert job.failed_at is not None and job.attempts == 1 and not proof.exists()
    assert job.last_error == ("DeserializationError: tests.django.taskapp.tasks:touch is refused: touch is "
                              "defined in tests.django.elsewhere, which is not in allowed_modules")
    assert touch.get_result(enqueued.id).status == TaskResultStatus.FAILED


def test_url_option_uses_a_queue_of_its_own(project, daemon, tasks) -> None:
    add = project.task(tasks.add, backend=f"{project.dialect}_url")
    result = finished(add, add.enqueue(20, 22).id)
    assert result.return_value == 42 and result.backend == f"{project.dialect}_url"


def test_unknown_result_ids(project, tasks) -> None:
    from django.tasks.exceptions import TaskResultDoesNotExist

    add = project.task(tasks.add)
    for result_id in ("999999.nope", "not-an-id", ""):
        with pytest.raises(TaskResultDoesNotExist):
            add.get_result(result_id)
