"""Unique jobs, as pure values: which key a job holds, and for how long.

A job enqueued with ``unique_key`` holds that key while it waits (``unique_while="waiting"``,
the default) or until it finishes (``"running"``: while it waits or runs), and, with
``unique_for``, for at most that long after its enqueue. Enqueuing a job whose key is held
inserts nothing and returns the holder's id (Oban's unique jobs, GoodJob's ``total_limit: 1``).

A job between two attempts waits, so it keeps its key. A job failed for good, done, cancelled
or deleted holds it no more (Oban's default states leave out ``discarded`` and ``cancelled``
too): the same work can be enqueued again at once. ``store.unique`` makes this race-free
with the key table's primary key.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from .config import NAME_LENGTH
from .errors import EnqueueError

#: What ``unique_while`` takes: the job holds its key while it waits, or while it waits or runs.
SCOPES = ("waiting", "running")


@dataclass(frozen=True)
class Unique:
    """A key a new job is to hold, as the key table stores it."""

    key: str
    scope: str = "waiting"
    expires_at: datetime | None = None


def key_of(value: Any) -> str:
    """The stored key for ``value`` (text); a key longer than the column is hashed, keeping a
    readable head (as tracked strands)."""
    if not isinstance(value, str) or not value:
        raise EnqueueError(f"unique_key must be non-empty text (or a callable of the arguments giving it), "
                           f"not {type(value).__name__}")
    if len(value) <= NAME_LENGTH:
        return value
    return f"{value[:190]}#{hashlib.sha256(value.encode()).hexdigest()}"


def unique_of(key: Any, scope: Any, unique_for: Any, args: tuple, kwargs: dict,
              now: Callable[[], datetime]) -> Unique | None:
    """The key a job enqueued with these options holds, checked; None without ``key``. A callable
    key is called with the job's arguments (the ``@job(unique_key=lambda ...)`` form)."""
    if key is None:
        if scope is not None or unique_for is not None:
            raise EnqueueError("unique_while and unique_for need a unique_key")
        return None
    if callable(key):
        key = key(*args, **kwargs)
    scope = scope or "waiting"
    if scope not in SCOPES:
        raise EnqueueError(f"unique_while must be one of {', '.join(SCOPES)}, not {scope!r}")
    return Unique(key_of(key), scope, _expiry(unique_for, now))


def _expiry(unique_for: Any, now: Callable[[], datetime]) -> datetime | None:
    """When a key given ``unique_for`` (seconds or a timedelta) stops holding."""
    if unique_for is None:
        return None
    if isinstance(unique_for, (int, float)) and not isinstance(unique_for, bool):
        unique_for = timedelta(seconds=unique_for)
    if not isinstance(unique_for, timedelta) or unique_for <= timedelta(0):
        raise EnqueueError(f"unique_for must be a positive number of seconds or a timedelta, not {unique_for!r}")
    return now() + unique_for


def check_decorator(options: dict[str, Any]) -> None:
    """Refuse at decoration what every ``.delay()`` would refuse: a key neither text nor callable,
    an unknown scope."""
    key = options.get("unique_key")
    if key is not None and not callable(key):
        key_of(key)
    scope = options.get("unique_while")
    if scope is not None and scope not in SCOPES:
        raise EnqueueError(f"unique_while must be one of {', '.join(SCOPES)}, not {scope!r}")
