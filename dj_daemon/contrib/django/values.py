"""``TaskResult`` values from what the database holds: the job's queue row and its result row.

The status comes from both (see ``status_of``). Times are stored as naive
UTC and shown as Django shows times: aware UTC with ``USE_TZ``, naive local
time without.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone as dt_timezone
from traceback import format_exception
from typing import Any, Mapping

from django.conf import settings
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.utils import timezone

from ... import errors
from ...store.results import FINISHED, Status

Row = Mapping[str, Any]


def status_of(job: Row | None, row: Row | None) -> Status | None:
    """What a task's rows say; None when neither exists.

    A finished result row is final. Otherwise the queue row decides: failed
    for good (refused before it could record anything), running (locked, and
    this attempt has started), or else ready, also between retries. A result
    left unfinished with no queue row means its job was removed.
    """
    if row is not None and row["status"] in FINISHED:
        return Status(row["status"])
    if job is None:
        return Status.FAILED if row is not None else None
    if job["failed_at"] is not None:
        return Status.FAILED
    if row is not None and job["locked_at"] is not None and row["last_attempted_at"] >= job["locked_at"]:
        return Status.RUNNING
    return Status.READY


def task_result(task: Task, result_id: str, status: Status, args: Any, kwargs: Any, backend: str,
                row: Row | None, job: Row | None = None) -> TaskResult:
    """A ``TaskResult``; ``job`` fills in what a missing or unfinished result row cannot say."""
    row, job = row or {}, job or {}
    result = TaskResult(
        task=task, id=result_id, status=TaskResultStatus(status.value), args=list(args), kwargs=dict(kwargs),
        backend=backend, enqueued_at=to_django(row.get("enqueued_at") or job.get("created_at")),
        started_at=to_django(row.get("started_at")), last_attempted_at=to_django(row.get("last_attempted_at")),
        finished_at=to_django(row.get("finished_at") or job.get("failed_at")),
        errors=[TaskError(**error) for error in _errors(status, row, job)],
        worker_ids=json.loads(row.get("worker_ids") or "[]"))
    if status is Status.SUCCESSFUL:
        object.__setattr__(result, "_return_value", json.loads(row["return_value"]))
    return result


def finished(running: TaskResult, *, value: Any = None, error: dict[str, str] | None = None) -> TaskResult:
    """``running`` as it ended, with ``value`` or with ``error`` added: for the ``task_finished`` signal."""
    status = TaskResultStatus.FAILED if error else TaskResultStatus.SUCCESSFUL
    result = dataclasses.replace(running, status=status, finished_at=timezone.now(),
                                 errors=running.errors + ([TaskError(**error)] if error else []))
    object.__setattr__(result, "_return_value", value)
    return result


def _errors(status: Status, row: Row, job: Row) -> list[dict[str, str]]:
    """The recorded errors; for a job failed before it could record any, its ``last_error``."""
    if row.get("errors"):
        return json.loads(row["errors"])
    if status is Status.FAILED and job.get("last_error"):
        name = job["last_error"].partition(":")[0]
        path = f"dj_daemon.errors.{name}" if isinstance(getattr(errors, name, None), type) else "builtins.Exception"
        return [{"exception_class_path": path, "traceback": job["last_error"]}]
    return []


def error_of(exc: BaseException) -> dict[str, str]:
    """A ``TaskError``'s fields for ``exc``, as Django's own backends write them."""
    cls = type(exc)
    return {"exception_class_path": f"{cls.__module__}.{cls.__qualname__}",
            "traceback": "".join(format_exception(exc))}


def to_django(value: datetime | None) -> datetime | None:
    """A stored naive-UTC time as Django shows times."""
    if value is None:
        return None
    aware = value.replace(tzinfo=dt_timezone.utc)
    return aware if settings.USE_TZ else timezone.make_naive(aware)


def from_django(value: datetime | None) -> datetime | None:
    """A Django time as an aware one (naive means the project's time zone without ``USE_TZ``)."""
    if value is None or timezone.is_aware(value):
        return value
    return timezone.make_aware(value)
