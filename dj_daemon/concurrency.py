"""Concurrency limits per key, as pure values: which strand a job joins, and how many of it run at once.

A job enqueued with ``concurrency_key`` (text, or a callable of the job's arguments giving it)
joins that key's *strand*, and at most ``concurrency_limit`` jobs of a strand (one by default)
run at once, on any number of hosts. Tracked jobs of one class and identifier are the case of
limit one: their strand is ``Tracking.strand``, and they run one at a time in enqueue order.
Solid Queue's ``limits_concurrency``, GoodJob's ``perform_limit`` and Oban Pro's partitioned
limits do the same for their peers' users.

The rule the reservation applies (``store.common.within_limit``) is one of places, not of
counts: a job may start while fewer than its limit of *earlier* jobs of its strand are still in
the queue (waiting, running, or between two attempts); a job failed for good, done, cancelled or
deleted holds no place. Places are fixed by ids, which no reservation changes, so two workers
that reserve at once cannot both be wrong, as they could be counting each other's uncommitted
locks. The price: a job waiting for its retry keeps its place, as a tracked job keeps its turn.
Jobs beyond the limit are not ready, so no worker polls them: each finished job of the strand
makes the next one ready for the next reservation.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .config import NAME_LENGTH
from .errors import EnqueueError

#: The first character of a concurrency key's strand; a tracked strand starts with its job's
#: class path, which never does, so the two never share a strand.
MARK = "@"
#: The largest ``concurrency_limit``: far above what a limit is for (a few calls at once to
#: one partner, one import at a time), and a bound on the ranks kept per strand.
MAX_LIMIT = 100


@dataclass(frozen=True)
class Concurrency:
    """The strand a new job joins and how many of its jobs may run at once."""

    strand: str
    limit: int = 1

    @property
    def stored_limit(self) -> int:
        """The ``strand_limit`` column's value, set for every job of a key (NULL: a tracked
        strand's), so that the ranking of a limited strand counts them all."""
        return self.limit


def strand_of(key: str) -> str:
    """The stored strand of ``key``: marked, and hashed past the column's length with a readable head."""
    strand = MARK + key
    return strand if len(strand) <= NAME_LENGTH else f"{strand[:190]}#{hashlib.sha256(key.encode()).hexdigest()}"


def checked_limit(limit: Any) -> int:
    """``limit`` if it is a whole number from 1 to ``MAX_LIMIT``."""
    if isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_LIMIT:
        return limit
    raise EnqueueError(f"concurrency_limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")


def concurrency_of(key: Any, limit: Any, args: tuple, kwargs: dict) -> Concurrency | None:
    """The strand a job enqueued with these options joins, checked; None without ``key``. A
    callable key is called with the job's arguments (the ``@job(concurrency_key=lambda ...)`` form)."""
    if key is None:
        if limit is not None:
            raise EnqueueError("concurrency_limit needs a concurrency_key")
        return None
    if callable(key):
        key = key(*args, **kwargs)
    if not isinstance(key, str) or not key:
        raise EnqueueError(f"concurrency_key must be non-empty text (or a callable of the arguments giving it), "
                           f"not {type(key).__name__}")
    return Concurrency(strand_of(key), 1 if limit is None else checked_limit(limit))


def check_decorator(options: dict[str, Any]) -> None:
    """Refuse at decoration what every ``.delay()`` would refuse: a limit out of range or without
    a key, a key neither text nor callable, and a key on a tracked job (its identifier is its key)."""
    key, limit = options.get("concurrency_key"), options.get("concurrency_limit")
    if key is None and limit is not None:
        raise EnqueueError("concurrency_limit needs a concurrency_key")
    if key is not None and options.get("track") is not None:
        raise EnqueueError("a tracked job runs one at a time per identifier already: "
                           "concurrency_key cannot be combined with track")
    if limit is not None:
        checked_limit(limit)
    if key is not None and not callable(key):
        concurrency_of(key, limit, (), {})
