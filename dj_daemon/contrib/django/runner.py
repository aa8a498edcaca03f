"""The daemon's side of a Django task: the perform-object a worker runs, which keeps the result.

``DelayedJobBackend.enqueue`` queues ``TaskRun(...).perform(*args, **kwargs)``,
and the daemon runs it like any job, so ``dj_daemon.contrib.django`` must be
in its ``allowed_modules``. ``TaskRun`` then imports the task only if the
task's own module passes the same list (the worker's, from ``job.current()``),
and takes it only if the task's function was defined there too;
a task refused, not importable, or without Django settings fails for good at
once. The result row follows the job: RUNNING as an attempt starts,
SUCCESSFUL with the return value; each failed attempt's error is added (the
``error`` hook), and the ``failure`` hook makes it FAILED once retries are
exhausted.
"""
from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import django
from django.apps import apps
from django.db import close_old_connections
from django.tasks import Task, TaskContext, task_backends
from django.tasks.signals import task_finished, task_started
from django.utils.json import normalize_json

from ... import log, payload
from ...errors import DeserializationError
from ...job import Job, current, utcnow
from ...store import results
from ...store.results import Status
from . import values

MODULE = __name__.rpartition(".")[0]  # what the daemon's allowed_modules must name


class TaskRun:
    """One enqueued Django task. Its attributes are what the queue row's handler stores.

    ``task`` is the task's import path (``pkg.mod:func``); ``token`` makes the
    result id, ``<job id>.<token>``, unique even where a database reuses the
    ids of deleted rows; ``using`` holds the ``Task.using()`` arguments that
    rebuild the task as it was enqueued. ``max_attempts`` and ``backoff``, when
    the backend sets them, are the retry policy the worker reads.
    The job shows under its task's path (``mysite.tasks:send_mail``) in
    ``delayed_job jobs list``, logs and metric labels (``payload.DISPLAY_ATTRIBUTE``).
    """

    display_attribute = "task"

    def __init__(self, task: str, token: str, using: dict[str, Any], **policy: Any) -> None:
        self.task, self.token, self.using = task, token, using
        self.__dict__.update(policy)

    def result_id(self, job_id: int) -> str:
        return f"{job_id}.{self.token}"

    def task_for(self, allowed: tuple[str, ...]) -> Task:
        """The task as enqueued, imported only if its module is in ``allowed``."""
        task = payload.resolve(self.task, allowed, home=_home)
        if not isinstance(task, Task):
            raise DeserializationError(f"{self.task} is not a Django task")
        run_after = self.using.get("run_after")
        return task.using(**{**self.using, "run_after": datetime.fromisoformat(run_after) if run_after else None})

    # -- in the worker ----------------------------------------------------------
    def perform(self, *args: Any, **kwargs: Any) -> None:
        """Run the task; the result row says RUNNING during the call, then SUCCESSFUL."""
        _setup_django()
        job = current().job
        task = self.task_for(current().allowed_modules)
        close_old_connections()
        row = self._backend.database.transaction(
            lambda conn: results.start(conn, self.result_id(job.id), job, utcnow()))
        self._running = values.task_result(task, self.result_id(job.id), Status.RUNNING, args, kwargs,
                                           self._backend.alias, row)
        task_started.send(type(self._backend), task_result=self._running)
        if task.takes_context:
            args = (TaskContext(task_result=self._running), *args)
        value = normalize_json(task.call(*args, **kwargs))
        self._finish(job, Status.SUCCESSFUL, return_value=value)
        task_finished.send(type(self._backend), task_result=values.finished(self._running, value=value))

    def error(self, job: Job, exc: BaseException) -> None:
        """An attempt failed: its error joins the result's (once the attempt had started)."""
        self._error, self._recorded = values.error_of(exc), False
        self._recorded = self._backend.database.transaction(
            lambda conn: results.add_error(conn, self.result_id(job.id), self._error))

    def failure(self, job: Job) -> None:
        """Retries are exhausted (or the task was refused): the result becomes FAILED."""
        self._finish(job, Status.FAILED, errors=None if self._recorded else [self._error])
        running = self.__dict__.get("_running")  # none when the task was refused before it started
        if running is not None:
            task_finished.send(type(self._backend), task_result=values.finished(running, error=self._error))

    def after(self, job: Job) -> None:
        close_old_connections()  # as Django does after a request: no broken or stale connection kept

    @property
    def _backend(self) -> Any:
        return task_backends[self.using["backend"]]

    def _finish(self, job: Job, status: Status, **outcome: Any) -> None:
        backend = self._backend
        backend.database.transaction(lambda conn: results.finish(
            conn, self.result_id(job.id), job, status, utcnow(), backend.result_ttl, **outcome))


def _home(obj: Any) -> str | None:
    """Where ``obj`` was defined; a task where its function was (``Task`` itself is Django's)."""
    return payload.home_of(obj.func if isinstance(obj, Task) else obj)


def _setup_django() -> None:
    """Load the Django project named by ``DJANGO_SETTINGS_MODULE``, once per worker.

    Django applies the project's ``LOGGING`` then; with ``disable_existing_loggers``
    (dictConfig's default) that would silence the worker's own loggers, so they are
    enabled again.
    """
    if apps.ready:
        return
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise DeserializationError("cannot run a Django task: DJANGO_SETTINGS_MODULE is not set for the daemon")
    django.setup()
    log.enable()
