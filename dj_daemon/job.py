"""Jobs as values: a queued row (``Job``) and a row about to be inserted (``NewJob``).

Nothing here touches the database or the clock; the store builds these
from rows and passes ``now`` in.
"""
from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple

from .payload import name_of
from .tracking import Tracking


def utcnow() -> datetime:
    """Naive UTC now: what every time column stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class NewJob:
    """A job ready to insert: its JSON handler and scheduling fields."""

    handler: str
    name: str
    queue: str | None = None
    priority: int = 0
    run_at: datetime | None = None
    tracking: Tracking | None = None

    def params(self, now: datetime) -> dict[str, Any]:
        """The values the store's INSERT binds: ``now`` fills both timestamps (see
        ``store.common.INSERT_JOB``) and a missing ``run_at``."""
        return {
            "handler": self.handler,
            "queue": self.queue,
            "priority": self.priority,
            "run_at": self.run_at or now,
            "attempts": 0,
            "now": now,
            "strand": self.tracking.strand if self.tracking else None,
        }

    def to_row(self, now: datetime) -> dict[str, Any]:
        """The ``delayed_jobs`` row that INSERT writes; a missing ``run_at`` means now."""
        row = self.params(now)
        del row["now"]
        return {**row, "created_at": now, "updated_at": now}


@dataclass(frozen=True)
class Job:
    """One row of ``delayed_jobs`` as the worker and the CLIs see it."""

    id: int
    priority: int
    attempts: int
    handler: str
    queue: str | None
    run_at: datetime
    locked_at: datetime | None = None
    locked_by: str | None = None
    failed_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    strand: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Job":
        """Build from a result row mapping (extra columns are ignored)."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__ if name in row})

    @property
    def name(self) -> str:
        """A display name from the handler, e.g. ``mailer:send``; never raises."""
        return display_name(self.handler)

    @property
    def state(self) -> str:
        """``failed``, ``running`` or ``waiting``: what the jobs CLI shows."""
        if self.failed_at is not None:
            return "failed"
        return "running" if self.locked_by else "waiting"

    def log_context(self) -> str:
        """``id=7 mailer:send queue=mail attempt=2``, for one-line logs."""
        return f"id={self.id} {self.name} queue={self.queue or '-'} attempt={self.attempts + 1}"


class Performing(NamedTuple):
    """The job a worker is performing, and the allow-list it performs under."""

    job: Job
    allowed_modules: tuple[str, ...]


_performing: ContextVar[Performing] = ContextVar("dj_daemon.performing")


class performing:
    """Set by the worker around a job's ``before`` hook and call, for code that runs other code
    on a job's behalf (the Django tasks runner): it learns its row and must obey the same list.
    A class rather than a generator: entered for every job, it must cost next to nothing."""

    __slots__ = ("_value", "_token")

    def __init__(self, job: Job, allowed_modules: tuple[str, ...]) -> None:
        self._value = Performing(job, allowed_modules)

    def __enter__(self) -> None:
        self._token = _performing.set(self._value)

    def __exit__(self, *exc_info: object) -> None:
        _performing.reset(self._token)


def current() -> Performing:
    """What the worker is performing in this context; ``LookupError`` outside a job."""
    return _performing.get()


def display_name(handler: str) -> str:
    """The target or receiver class named by a handler, or ``<malformed>``."""
    try:
        return name_of(json.loads(handler))
    except Exception:
        return "<malformed>"

