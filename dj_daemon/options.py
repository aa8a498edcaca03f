"""Enqueue-time options: what a job gets, by delayed_job's precedence, and what is refused.

A job's queue and priority are an argument given at enqueue, else the job's
own (a ``@job`` option, a class attribute, or a method taking no argument
such as delayed_job's ``queue_name``), else, for the priority, its queue's
``queue_attributes``, else the config's ``default_queue_name`` and
``default_priority``. Nothing is accepted and then ignored: an option nobody
reads, or a value no column or worker can hold, is refused with one line,
and delayed_job's name for one of ours says which to use.
"""
from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from . import concurrency, payload, unique
from .config import INT32, NAME_LENGTH, Config
from .errors import EnqueueError
from .job import utcnow

RunAt = datetime | timedelta | Callable[[], datetime | timedelta] | None

#: What every enqueue takes besides the call's own arguments (and ``connection``).
ENQUEUE_OPTIONS = ("queue", "priority", "run_at", "max_attempts", "unique_key", "unique_for", "unique_while",
                   "concurrency_key", "concurrency_limit")
#: delayed_job's names for options we name otherwise: refused with ours, never ignored.
RENAMED = {"queue_name": "queue"}


def refuse_unknown(options: Iterable[str], accepted: Iterable[str], what: str) -> None:
    """One ``TypeError`` line for options nothing would read, naming ours for delayed_job's."""
    accepted = tuple(accepted)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        named = [f"{name} (use {RENAMED[name]}=)" if name in RENAMED else name for name in unknown]
        raise TypeError(f"unknown {what} option(s): {', '.join(named)}; known: {', '.join(accepted)}")


def refuse_misnamed(target: Any, kwargs: dict[str, Any]) -> None:
    """``enqueue(f, queue_name="mail")``: delayed_job's option name would reach ``f`` as an
    argument; refused unless ``f`` takes it. Costs nothing when no such name is passed."""
    for name in RENAMED.keys() & kwargs.keys():
        if not _takes(target, name):
            called = getattr(target, "__qualname__", None) or type(target).__qualname__
            raise EnqueueError(f"{name}= is not an argument of {called}: "
                               f"use {RENAMED[name]}= for the job's {RENAMED[name]}")


def _takes(target: Any, name: str) -> bool:
    """Whether calling ``target`` may pass ``name``; a perform-object takes nothing, and a
    string target or a builtin without a signature is given the benefit of the doubt."""
    if isinstance(target, str):
        return True
    if not callable(target):
        return False
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return True
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def queue_and_priority(config: Config, owner: Any, queue: Any, priority: Any) -> tuple[str | None, int]:
    """The job's queue and priority by the precedence above, checked for their columns."""
    if queue is None:
        queue = own(owner, "queue", "queue_name")
        if queue is None:
            queue = config.default_queue_name or None
    if priority is None:
        priority = own(owner, "priority")
        if priority is None:
            attributes = config.queue_attributes.get(queue) if queue is not None else None
            priority = attributes.get("priority") if attributes is not None else None
            if priority is None:
                priority = config.default_priority
    return checked_queue(queue), checked_priority(priority)


def when(run_at: RunAt) -> datetime | None:
    """Naive UTC for a datetime (naive means UTC), a delay, or a callable giving either."""
    if callable(run_at):
        run_at = run_at()
    if isinstance(run_at, timedelta):
        return utcnow() + run_at
    if isinstance(run_at, datetime):
        return run_at if run_at.tzinfo is None else run_at.astimezone(timezone.utc).replace(tzinfo=None)
    if run_at is None:
        return None
    raise _bad_run_at(run_at)


def _bad_run_at(run_at: Any) -> EnqueueError:
    return EnqueueError(f"run_at must be a datetime, a timedelta or a callable returning one, "
                        f"not {type(run_at).__name__}")


def own(owner: Any, *names: str) -> Any:
    """The job's own value of the first of ``names`` it sets (an attribute, or a method taking no
    argument, as delayed_job's ``queue_name``); None when it sets none. A callable ``run_at``
    is returned as it is: it is called when the job's time is worked out."""
    for name in names:
        value = getattr(owner, name, None)
        if value is None:
            continue
        if not callable(value) or name == "run_at":
            return value
        try:
            return value()
        except TypeError as exc:  # e.g. a method of a class enqueued before it is built
            where = payload.path_of(owner) if isinstance(owner, type) else type(owner).__qualname__
            raise EnqueueError(f"{name} of {where} must be a value or a method taking no argument: {exc}") from None
    return None


def checked_queue(queue: Any) -> str | None:
    """``queue`` if the ``queue`` column holds it (text, at most 255 characters, or none)."""
    if queue is None or isinstance(queue, str) and len(queue) <= NAME_LENGTH:
        return queue
    what = f"{len(queue)} characters" if isinstance(queue, str) else type(queue).__name__
    raise EnqueueError(f"queue must be text of at most {NAME_LENGTH} characters, not {what}")


def checked_priority(priority: Any) -> int:
    """``priority`` if the ``priority`` column holds it (a 32-bit integer, not a bool)."""
    if isinstance(priority, int) and not isinstance(priority, bool) and -INT32 - 1 <= priority <= INT32:
        return priority
    raise EnqueueError(f"priority must be an integer from {-INT32 - 1} to {INT32}, not {payload.shown(priority)}")


def check_decorator(options: dict[str, Any]) -> None:
    """Refuse at decoration what every ``.delay()`` of the function would refuse at enqueue."""
    checked_queue(options.get("queue"))
    run_at = options.get("run_at")
    if run_at is not None and not callable(run_at) and not isinstance(run_at, (datetime, timedelta)):
        raise _bad_run_at(run_at)
    if options.get("priority") is not None:
        checked_priority(options["priority"])
    if options.get("max_attempts") is not None:
        payload.check_max_attempts(options["max_attempts"], EnqueueError)
    unique.check_decorator(options)
    concurrency.check_decorator(options)


def stored(max_attempts: Any, unique_key: str | None = None) -> dict[str, Any] | None:
    """What the handler keeps for the worker (``payload.OPTIONS``), checked; None when nothing."""
    kept: dict[str, Any] = {}
    if max_attempts is not None:
        kept["max_attempts"] = payload.check_max_attempts(max_attempts, EnqueueError)
    if unique_key is not None:
        kept["unique_key"] = unique_key
    return kept or None
