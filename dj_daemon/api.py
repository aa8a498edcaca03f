"""The application's entry point: enqueue calls, decorate jobs, delay methods.

``Queue`` is bound to one config and opens its store on first use. The
module-level ``enqueue``/``enqueue_many``/``delay``/``job`` use a default
queue built from the environment's config (``DJ_CONFIG``, ``DJ_*``) unless
the application calls ``configure()`` first. Neither reads
``/etc/delayed_job.conf`` unasked (see ``configure``).

What a job gets, and what is refused, is decided by ``options`` as delayed_job
decides it.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, Iterable

from . import concurrency, enqueuing, options as enqueue_options, payload, unique
from .config import Config, config_file, load_config
from .errors import EnqueueError
from .job import NewJob, utcnow
from .lifecycle import install_plugins
from .nudge import Nudger
from .store import Store, open_store
from .tracking import Tracking, tracking_of

log = logging.getLogger(__name__)

RunAt = enqueue_options.RunAt


def _connection(connection: Any) -> Any:
    """A Core connection from a Connection or an ORM Session (joining its transaction)."""
    if connection is not None and hasattr(connection, "get_bind"):
        return connection.connection()
    return connection


class Queue:
    """Enqueues into the ``delayed_jobs`` table of one database."""

    def __init__(self, config: Config | None = None, store: Store | None = None, plugins: bool = True) -> None:
        """``plugins=False`` leaves the ``plugins`` setting's callables uninstalled: the supervisor
        builds its recurring jobs' rows with a queue, and a plugin's set-up belongs to the workers."""
        self.config = config or load_config(read_default=False)
        self._store = store
        self._nudge = Nudger(self.config)
        if plugins:
            install_plugins(self.config.plugins)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config)
        return self._store

    def prepare(self, target: Any, *args: Any, queue: str | None = None, priority: int | None = None,
                run_at: RunAt = None, max_attempts: int | None = None, unique_key: Any = None,
                unique_for: Any = None, unique_while: str | None = None, concurrency_key: Any = None,
                concurrency_limit: int | None = None, **kwargs: Any) -> NewJob:
        """The row ``enqueue`` would insert, not yet inserted: for ``enqueue_many``."""
        return self.prepare_call(target, args, kwargs, queue=queue, priority=priority, run_at=run_at,
                                 max_attempts=max_attempts, unique_key=unique_key, unique_for=unique_for,
                                 unique_while=unique_while, concurrency_key=concurrency_key,
                                 concurrency_limit=concurrency_limit)

    def prepare_call(self, target: Any, args: tuple = (), kwargs: dict | None = None, *,
                     queue: str | None = None, priority: int | None = None, run_at: RunAt = None,
                     max_attempts: int | None = None, unique_key: Any = None, unique_for: Any = None,
                     unique_while: str | None = None, concurrency_key: Any = None,
                     concurrency_limit: int | None = None) -> NewJob:
        """``prepare`` with the call's arguments passed explicitly (no name collisions).

        ``target`` is a function, a perform-object, a perform class (built from the
        arguments when the job runs) or the text ``"pkg.mod:name"`` of either, which
        is checked against the allow-list and not imported here.
        """
        args, kwargs = tuple(args), dict(kwargs or {})
        if kwargs:
            enqueue_options.refuse_misnamed(target, kwargs)
        owner = None if isinstance(target, str) else target
        if isinstance(owner, JobFunction):
            if max_attempts is None:
                max_attempts = owner.max_attempts  # stored too: the worker honours what was enqueued
            if unique_key is None:
                unique_key, unique_for, unique_while = owner.unique_key, owner.unique_for, owner.unique_while
            if concurrency_key is None and concurrency_limit is None:
                concurrency_key, concurrency_limit = owner.concurrency_key, owner.concurrency_limit
        elif concurrency_key is None and concurrency_limit is None and owner is not None:
            concurrency_key = enqueue_options.own(owner, "concurrency_key")  # a perform-object's own
            concurrency_limit = enqueue_options.own(owner, "concurrency_limit") if concurrency_key else None
        held = unique.unique_of(unique_key, unique_while, unique_for, args, kwargs, utcnow)
        limited = concurrency.concurrency_of(concurrency_key, concurrency_limit, args, kwargs)
        encoded = payload.encode_call(target, args, kwargs, self.config.allowed_modules,
                                      enqueue_options.stored(max_attempts, held and held.key))
        tracking = tracking_of(owner, encoded.name.removesuffix("#perform"), args, kwargs)
        return self._new_job(encoded, owner, queue, priority, run_at, tracking, held, limited)

    def prepare_method(self, receiver: Any, method: str, args: tuple = (), kwargs: dict | None = None, *,
                       queue: str | None = None, priority: int | None = None, run_at: RunAt = None,
                       max_attempts: int | None = None, unique_key: Any = None, unique_for: Any = None,
                       unique_while: str | None = None, concurrency_key: Any = None,
                       concurrency_limit: int | None = None) -> NewJob:
        """The row for ``receiver.method(*args, **kwargs)`` run later."""
        args, kwargs = tuple(args), dict(kwargs or {})
        held = unique.unique_of(unique_key, unique_while, unique_for, args, kwargs, utcnow)
        limited = concurrency.concurrency_of(concurrency_key, concurrency_limit, args, kwargs)
        encoded = payload.encode_method(receiver, method, args, kwargs, self.config.allowed_modules,
                                        enqueue_options.stored(max_attempts, held and held.key))
        return self._new_job(encoded, receiver, queue, priority, run_at, None, held, limited)

    def _new_job(self, encoded: payload.Encoded, owner: Any, queue: str | None, priority: int | None,
                 run_at: RunAt, tracking: Tracking | None = None, held: unique.Unique | None = None,
                 limited: concurrency.Concurrency | None = None) -> NewJob:
        """The row, each field by delayed_job's precedence (see ``options``), checked."""
        size = len(encoded.handler.encode("utf-8"))
        if size > self.config.max_payload_bytes:
            raise EnqueueError(f"payload of {size} bytes exceeds max_payload_bytes ({self.config.max_payload_bytes})")
        queue, priority = enqueue_options.queue_and_priority(self.config, owner, queue, priority)
        if tracking is not None and limited is not None:
            raise EnqueueError("a tracked job runs one at a time per identifier already: "
                               "concurrency_key cannot be combined with track")
        return NewJob(
            handler=encoded.handler,
            name=encoded.name,
            queue=queue,
            priority=priority,
            run_at=enqueue_options.when(run_at if run_at is not None else enqueue_options.own(owner, "run_at")),
            tracking=tracking,
            unique=held,
            concurrency=limited,
            owner=owner,
        )

    def insert(self, jobs: list[NewJob], connection: Any = None) -> list[int | None]:
        """Insert, then nudge a daemon on this host; inside the caller's transaction the nudge would
        come before the commit, so the daemon's poll finds those jobs instead. A job with an
        ``enqueue`` hook, under ``enqueue`` plugin callbacks or in inline mode (``delay_jobs``)
        goes through ``enqueuing`` first, inside that transaction; one run inline has no id."""
        if not enqueuing.plain(jobs, self.config):
            return enqueuing.enqueue_each(jobs, self.config, lambda rows: self._insert(rows, connection),
                                          enqueue_options.when)
        return self._insert(jobs, connection)  # type: ignore[return-value]

    def _insert(self, jobs: list[NewJob], connection: Any) -> list[int]:
        ids = self.store.insert(jobs, _connection(connection))
        if connection is None:
            self._nudge()
        return ids

    def enqueue(self, target: Any, *args: Any, queue: str | None = None, priority: int | None = None,
                run_at: RunAt = None, max_attempts: int | None = None, unique_key: Any = None,
                unique_for: Any = None, unique_while: str | None = None, concurrency_key: Any = None,
                concurrency_limit: int | None = None, connection: Any = None, **kwargs: Any) -> int:
        """Queue ``target(*args, **kwargs)`` (or a perform-object); returns the job id.

        ``max_attempts`` is stored with the job: whichever worker runs it honours it.
        With ``unique_key`` (text), nothing is inserted while another job holding that
        key waits (``unique_while="running"``: waits or runs), and that job's id is
        returned; ``unique_for`` (seconds or a timedelta) bounds how long a key holds
        (see ``unique``). With ``concurrency_key`` (text), at most ``concurrency_limit``
        (default 1) jobs of that key run at once, in enqueue order (see ``concurrency``).
        With ``connection`` (a Connection or ORM Session) the INSERT joins the caller's
        transaction and is rolled back with it.
        """
        new = self.prepare_call(target, args, kwargs, queue=queue, priority=priority, run_at=run_at,
                                max_attempts=max_attempts, unique_key=unique_key, unique_for=unique_for,
                                unique_while=unique_while, concurrency_key=concurrency_key,
                                concurrency_limit=concurrency_limit)
        return self.insert([new], connection)[0]

    def enqueue_call(self, target: Any, args: tuple = (), kwargs: dict | None = None, *,
                     connection: Any = None, **options: Any) -> int:
        """``enqueue`` for a target whose own keyword arguments are named queue, priority, ..."""
        enqueue_options.refuse_unknown(options, enqueue_options.ENQUEUE_OPTIONS, "enqueue_call")
        return self.insert([self.prepare_call(target, args, kwargs, **options)], connection)[0]

    def enqueue_many(self, jobs: Iterable[NewJob], connection: Any = None) -> int:
        """Insert prepared jobs in one multi-row INSERT; returns how many."""
        rows = list(jobs)
        self.insert(rows, connection)
        return len(rows)

    def cancel(self, job_id: int) -> str:
        """Cancel a job: ``"cancelled"`` when it waited (removed now), ``"stopping"`` when it runs
        (its worker is asked to stop, then killed after ``cancel_grace``; see ``cancel``). Either
        way it is never retried. An unknown id is a one-line ``UnknownJobError``."""
        return self.store.cancel(job_id)

    def delay(self, receiver: Any, *, connection: Any = None, **options: Any) -> "Delayed":
        """``delay(photo, queue="img").upload(size=2)`` queues the method call instead of making it;
        options are ``options.ENQUEUE_OPTIONS``, anything else is refused here."""
        enqueue_options.refuse_unknown(options, enqueue_options.ENQUEUE_OPTIONS, "delay")
        return Delayed(self, receiver, connection, options)

    def job(self, func: Callable | None = None, **options: Any) -> Any:
        """The ``@job`` decorator bound to this queue; see ``JobFunction``."""
        if func is None:
            return lambda f: JobFunction(f, self, **options)
        return JobFunction(func, self, **options)


class Delayed:
    """What ``delay(obj)`` returns: calling one of its methods queues that call."""

    def __init__(self, queue: Queue, receiver: Any, connection: Any, options: dict[str, Any]) -> None:
        self._queue, self._receiver, self._connection, self._options = queue, receiver, connection, options

    def __getattr__(self, method: str) -> Callable[..., int]:
        def enqueue_method(*args: Any, **kwargs: Any) -> int:
            new = self._queue.prepare_method(self._receiver, method, args, kwargs, **self._options)
            return self._queue.insert([new], self._connection)[0]
        return enqueue_method


class JobFunction:
    """A function that runs inline when called and is queued by ``.delay()`` (``handle_asynchronously``).

    Options become the job's defaults and policy: ``queue``, ``priority``,
    ``run_at`` (a datetime, a delay, or a callable such as "one day from
    now"), ``max_attempts``, ``unique_key`` (text, or a callable of the arguments giving it),
    ``unique_for``, ``unique_while``, ``concurrency_key`` (text, or a callable of the arguments giving
    it), ``concurrency_limit`` (see ``Queue.enqueue``), ``max_run_time``, ``backoff`` (seconds or a
    function of the attempt count), ``commit_each`` (see ``retry``), and hooks ``before(job)``, ``after(job)``,
    ``success(job)``, ``error(job, exc)``, ``failure(job)``. ``track`` (an
    argument name, or a callable of the arguments, giving the identifier) makes
    it a tracked job, with ``gate`` "defer", "hold" or "none" (see ``tracking``).
    """

    OPTIONS = ("queue", "priority", "run_at", "max_attempts", "unique_key", "unique_for", "unique_while",
               "concurrency_key", "concurrency_limit", "max_run_time", "backoff", "commit_each",
               "before", "after", "success", "error", "failure", "track", "gate",
               "enqueue", "reschedule_at", "destroy_failed_jobs")

    def __init__(self, func: Callable, bound: "Queue | None" = None, **options: Any) -> None:
        enqueue_options.refuse_unknown(options, self.OPTIONS, "job")
        enqueue_options.check_decorator(options)
        functools.update_wrapper(self, func)
        self.func = func
        self._bound = bound
        for name in self.OPTIONS:
            setattr(self, name, options.get(name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    @property
    def _queue(self) -> Queue:
        return self._bound or default_queue()

    def prepare(self, *args: Any, **kwargs: Any) -> NewJob:
        """The row ``.delay()`` would insert, for ``enqueue_many``."""
        return self._queue.prepare_call(self, args, kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> int:
        """Queue a call with the decorator's defaults; returns the job id."""
        return self._queue.enqueue_call(self, args, kwargs)


_default: Queue | None = None


def configure(config: Config | None = None, *, path: str | os.PathLike[str] | None = None,
              **overrides: Any) -> Queue:
    """Set the default queue's config (else it is loaded from the environment on first use).

    Without ``config``: the file ``path``, else ``$DJ_CONFIG``, then ``DJ_*`` and
    ``overrides``. ``/etc/delayed_job.conf`` is read only when named: it is the
    daemon's, and an application on the same host may mean another database;
    a library call must not change which one because a file appeared. The file
    read is logged (INFO) so that a config from ``$DJ_CONFIG`` is never a surprise.
    """
    global _default
    if config is None:
        file = config_file(path, os.environ, read_default=False)
        config = load_config(file, overrides=overrides, read_default=False)
        if file is not None:
            log.info("dj_daemon configured from %s", file)
    elif overrides:
        config = config.replace(**overrides)
    _default = Queue(config)
    return _default


def default_queue() -> Queue:
    """The queue behind the module-level functions."""
    return _default or configure()


def enqueue(target: Any, *args: Any, **kwargs: Any) -> int:
    """``Queue.enqueue`` on the default queue."""
    return default_queue().enqueue(target, *args, **kwargs)


def enqueue_many(jobs: Iterable[NewJob], connection: Any = None) -> int:
    return default_queue().enqueue_many(jobs, connection)


def prepare(target: Any, *args: Any, **kwargs: Any) -> NewJob:
    return default_queue().prepare(target, *args, **kwargs)


def cancel(job_id: int) -> str:
    """``Queue.cancel`` on the default queue."""
    return default_queue().cancel(job_id)


def delay(receiver: Any, **options: Any) -> Delayed:
    return default_queue().delay(receiver, **options)


def job(func: Callable | None = None, **options: Any) -> Any:
    """``@job`` or ``@job(queue="mail", priority=5)``; ``.delay()`` uses the default queue."""
    if func is None:
        return lambda f: JobFunction(f, None, **options)
    return JobFunction(func, None, **options)
