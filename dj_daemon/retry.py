"""Retry policy as pure functions: how long to wait, when to give up, how long a job may run.

delayed_job waits ``attempts**4 + 5`` seconds after the n-th failure. A job
(a decorated function or a perform-object's class) may override
``max_attempts``, ``max_run_time`` and ``backoff`` (seconds, or a callable
of the attempt count returning seconds), and ask with ``commit_each = True``
that its row be deleted as soon as it succeeds, not with its worker's next
reservation (see ``journal``: then not even the loss of its host runs it again).

A job's own ``reschedule_at(now, attempts)`` (delayed_job's, on a class or as
the decorator's option) replaces the backoff: given ``now`` (aware, UTC) and the
failures so far, it returns when to try again, a datetime (naive means UTC).
Anything else, or an exception, is a ``ScheduleError``: the worker then fails
the job for good with that line first in its ``last_error``. A time in the past
means now, and none is later than ``LONGEST_WAIT`` from now.

A job that fails for good keeps its row (``failed_at`` set) unless
``destroy_failed_jobs`` (the job's attribute, else the setting) says to delete it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from .config import Config
from .errors import DJError


#: Seconds: the longest wait before a retry (a century).
LONGEST_WAIT = 100 * 365 * 86400.0
#: A job's own schedule: ``reschedule_at(now, attempts)`` returning a datetime.
Schedule = Callable[[datetime, int], Any]


class ScheduleError(DJError):
    """A job's ``reschedule_at`` raised or returned something that is no datetime."""


def default_backoff(attempts: int) -> float:
    """delayed_job's schedule: 6 s, 21 s, 86 s, 261 s ... after attempts 1, 2, 3, 4."""
    return float(attempts**4 + 5)


@dataclass(frozen=True)
class Policy:
    """The retry limits that apply to one job."""

    max_attempts: int
    max_run_time: float
    backoff: Callable[[int], float]
    commit_each: bool = False
    reschedule_at: Schedule | None = None

    def gives_up(self, attempts: int) -> bool:
        """True when ``attempts`` failures leave no retry."""
        return attempts >= self.max_attempts

    def next_run_at(self, attempts: int, now: datetime) -> datetime:
        """When to try again after the ``attempts``-th failure: at most ``LONGEST_WAIT`` later, as
        ``attempts**4`` of a high count (or a backoff's infinity) is past any date a column holds.
        The job's own ``reschedule_at``, if any, decides instead (``ScheduleError`` if it cannot)."""
        if self.reschedule_at is not None:
            return own_schedule(self.reschedule_at, attempts, now)
        return now + timedelta(seconds=min(max(0.0, self.backoff(attempts)), LONGEST_WAIT))


def own_schedule(schedule: Schedule, attempts: int, now: datetime) -> datetime:
    """``schedule(now, attempts)`` as naive UTC (``now`` is naive UTC, passed aware), between
    ``now`` and ``LONGEST_WAIT`` later; one line of ``ScheduleError`` for what is no datetime."""
    try:
        when = schedule(now.replace(tzinfo=timezone.utc), attempts)
    except Exception as exc:
        raise ScheduleError(f"reschedule_at raised {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if not isinstance(when, datetime):
        shown = repr(when)
        shown = shown if len(shown) <= 60 else shown[:60] + "..."
        raise ScheduleError(f"reschedule_at returned {shown} ({type(when).__name__}), not a datetime")
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return min(max(when, now), now + timedelta(seconds=LONGEST_WAIT))


def policy_for(owner: Any, config: Config, max_attempts: int | None = None) -> Policy:
    """The config's policy, overridden by ``owner``'s attributes where it sets them.

    ``max_attempts``, stored with the job at enqueue (``payload.OPTIONS``), beats
    both: whichever worker runs the job honours it. A job's own ``max_run_time``
    may shorten the limit but never extend it beyond the config's: other
    workers reclaim locks older than that.
    """
    scale = config.backoff_scale
    backoff = getattr(owner, "backoff", None)
    if backoff is None:
        chosen: Callable[[int], float] = lambda n: scale * default_backoff(n)
    elif callable(backoff):
        chosen = lambda n: float(backoff(n))
    else:
        chosen = lambda n: float(backoff)
    run_time = getattr(owner, "max_run_time", None) or config.max_run_time
    return Policy(
        max_attempts=max_attempts or getattr(owner, "max_attempts", None) or config.max_attempts,
        max_run_time=min(float(run_time), config.max_run_time),
        backoff=chosen,
        commit_each=bool(getattr(owner, "commit_each", False)),
        reschedule_at=_schedule_of(owner),
    )


def _schedule_of(owner: Any) -> Schedule | None:
    """A job's own ``reschedule_at``: a method of its class, or the decorator's option."""
    schedule = getattr(owner, "reschedule_at", None)
    return schedule if callable(schedule) else None


def destroys_failed(owner: Any, config: Config) -> bool:
    """Whether a job that failed for good is deleted: its own ``destroy_failed_jobs`` if it sets
    one, else the setting (as for a job whose handler could not be loaded: ``owner`` None)."""
    own = getattr(owner, "destroy_failed_jobs", None)
    return config.destroy_failed_jobs if own is None else bool(own)
