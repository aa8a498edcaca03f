"""``DelayedJobBackend``: Django's tasks framework on the ``delayed_jobs`` table.

Settings::

    TASKS = {"default": {
        "BACKEND": "dj_daemon.contrib.django.DelayedJobBackend",
        "QUEUES": ["default", "mail"],           # optional, as for any Django backend
        "OPTIONS": {
            "DATABASE": "default",               # the Django database holding the queue
            # or "URL": "mysql+pymysql://...",    # a dj-daemon queue of its own instead
            "RESULT_TTL": 86400,                 # seconds a finished result is kept
            "MAX_ATTEMPTS": 5,                   # default: the daemon's max_attempts
            "BACKOFF": 30,                       # seconds between attempts; default: delayed_job's
        },
    }}

Mapping: Django's priority (-100..100, higher first) becomes the job's
priority negated (lower first), so the order is kept and 0 stays 0;
``run_after`` is ``run_at``; ``queue_name`` is the job's ``queue``.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

from django.tasks import Task, TaskResult
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTaskBackend, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils.connection import ConnectionDoesNotExist
from django.utils.crypto import get_random_string

from ... import payload
from ...api import Queue
from ...config import Config, validate
from ...errors import DJError, DeserializationError
from ...job import utcnow
from ...nudge import Nudger
from ...store import open_store, results
from ...store.results import Status
from . import values
from .database import DjangoDatabase, QueueDatabase, url_of
from .runner import MODULE, TaskRun

OPTIONS = ("DATABASE", "URL", "RESULT_TTL", "MAX_ATTEMPTS", "BACKOFF")
TOKEN_LENGTH = 12


class DelayedJobBackend(BaseTaskBackend):
    """Enqueues into ``delayed_jobs`` (in the caller's transaction by default); the daemon runs them."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        try:
            self._configure(dict(self.options))
        except (DJError, ConnectionDoesNotExist, KeyError, TypeError, ValueError) as exc:
            raise InvalidTaskBackend(f"TASKS[{alias!r}]: {exc}") from None

    def _configure(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown OPTIONS {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
        if "URL" in options and "DATABASE" in options:
            raise ValueError("OPTIONS take DATABASE or URL, not both")
        self.result_ttl = timedelta(seconds=_number(options.get("RESULT_TTL", 86400), "RESULT_TTL", float, 0))
        self.policy = {name.lower(): _number(options[name], name, cast, least)
                       for name, cast, least in (("MAX_ATTEMPTS", int, 1), ("BACKOFF", float, 0)) if name in options}
        if "URL" in options:
            config = validate(Config(url=options["URL"], allowed_modules=(MODULE,)))
            self.queue = Queue(config, open_store(config))  # a bad URL or driver is told now; no connection yet
            self.database: DjangoDatabase | QueueDatabase = QueueDatabase(self.queue)
        else:
            alias = options.get("DATABASE", "default")
            self.queue = Queue(Config(url=url_of(alias), allowed_modules=(MODULE,)))
            self.database = DjangoDatabase(alias, Nudger(self.queue.config))

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Insert the job; it commits or rolls back with the caller's transaction."""
        self.validate_task(task)
        run_after = values.from_django(task.run_after)
        using = {"backend": self.alias, "priority": task.priority, "queue_name": task.queue_name,
                 "run_after": run_after.isoformat() if run_after else None}
        run = TaskRun(payload.path_of(task.func), get_random_string(TOKEN_LENGTH), using, **self.policy)
        new = self.queue.prepare_method(run, "perform", tuple(args), dict(kwargs), queue=task.queue_name,
                                        priority=-task.priority, run_at=run_after)
        enqueued_at = utcnow()
        job_id = self.database.insert(new)
        result = values.task_result(task, run.result_id(job_id), Status.READY, args, kwargs, self.alias,
                                    {"enqueued_at": enqueued_at})
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The task's state now, from its queue row and its result row (read in that order, so
        that a job finishing in between is seen finished, not gone)."""
        job_id, _, token = str(result_id).partition(".")
        if not job_id.isdigit():
            raise TaskResultDoesNotExist(result_id)
        job, row = self.database.read(lambda conn: (results.queued(conn, int(job_id)), results.get(conn, result_id)))
        queued = _described(job, token)
        status = values.status_of(job if queued else None, row)
        if status is None:
            raise TaskResultDoesNotExist(result_id)
        run, args, kwargs = _described(row, token) or queued
        return values.task_result(run.task_for(("*",)), result_id, status, args, kwargs, self.alias, row, job)


def _number(value: Any, name: str, cast: type, least: float) -> Any:
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise ValueError(f"OPTIONS {name} must be a number, not {value!r}") from None
    if number < least:
        raise ValueError(f"OPTIONS {name} must be at least {least}")
    return number


def _described(row: Mapping[str, Any] | None, token: str) -> tuple[TaskRun, list, dict] | None:
    """The task run, arguments and keyword arguments in ``row``'s handler, if it is the run
    ``token`` names (a queue row may be another job's where a database reuses ids)."""
    if row is None:
        return None
    try:
        call = payload.decode(row["handler"], (MODULE,), _no_records)
    except DeserializationError:
        return None
    if not isinstance(call.owner, TaskRun) or call.owner.token != token:
        return None
    return call.owner, call.args, call.kwargs


def _no_records(cls: type, pk: list[Any]) -> Any:
    raise DeserializationError("a Django task's arguments hold no records")
