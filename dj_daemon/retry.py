"""Retry policy as pure functions: how long to wait, when to give up, how long a job may run.

delayed_job waits ``attempts**4 + 5`` seconds after the n-th failure. A job
(a decorated function or a perform-object's class) may override
``max_attempts``, ``max_run_time`` and ``backoff`` (seconds, or a callable
of the attempt count returning seconds), and ask with ``commit_each = True``
that its row be deleted as soon as it succeeds, not with its worker's next
reservation (see ``journal``: then not even the loss of its host runs it again).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from .config import Config


#: Seconds: the longest wait before a retry (a century).
LONGEST_WAIT = 100 * 365 * 86400.0


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

    def gives_up(self, attempts: int) -> bool:
        """True when ``attempts`` failures leave no retry."""
        return attempts >= self.max_attempts

    def next_run_at(self, attempts: int, now: datetime) -> datetime:
        """When to try again after the ``attempts``-th failure: at most ``LONGEST_WAIT`` later, as
        ``attempts**4`` of a high count (or a backoff's infinity) is past any date a column holds."""
        return now + timedelta(seconds=min(max(0.0, self.backoff(attempts)), LONGEST_WAIT))


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
    )
