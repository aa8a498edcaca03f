"""Jobs as values: a queued row (``Job``) and a row about to be inserted (``NewJob``).

Nothing here touches the database or the clock; the store builds these
from rows and passes ``now`` in.
"""
from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from types import NoneType
from typing import Any, Mapping, NamedTuple

from .concurrency import MARK, Concurrency
from .payload import name_of
from .tracking import Tracking
from .unique import Unique


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
    unique: Unique | None = None  #: the key it is to hold (``unique``); stored in its own table
    concurrency: Concurrency | None = None  #: the strand of its ``concurrency_key`` and its limit
    #: what carries the job's hooks (a decorated function, a perform-object), for its ``enqueue``
    #: hook and inline mode; never stored
    owner: Any = field(default=None, compare=False, repr=False)

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
            "strand": self.tracking.strand if self.tracking else self.concurrency and self.concurrency.strand,
            "strand_limit": self.concurrency and self.concurrency.stored_limit,
        }

    def to_row(self, now: datetime) -> dict[str, Any]:
        """The ``delayed_jobs`` row that INSERT writes; a missing ``run_at`` means now."""
        row = self.params(now)
        del row["now"]
        return {**row, "created_at": now, "updated_at": now}


#: What each column read into a ``Job`` must hold. SQLite stores anything in any column, and
#: MariaDB zero dates come back as text: a row holding something else is defective.
KINDS: dict[str, tuple[type, ...]] = {
    "priority": (int,), "attempts": (int,), "handler": (str,), "queue": (str, NoneType),
    "run_at": (datetime,), "locked_at": (datetime, NoneType), "locked_by": (str, NoneType),
    "failed_at": (datetime, NoneType), "last_error": (str, NoneType), "created_at": (datetime, NoneType),
    "strand": (str, NoneType), "strand_limit": (int, NoneType),
}
#: Attempts below this: the next one must still fit the INT column (a failure writes it).
ATTEMPTS_LIMIT = 2**31 - 1
#: Characters of a bad value quoted in a defect.
QUOTED = 60


def tracks(strand: str | None) -> bool:
    """Whether a row of ``strand`` is a tracked job's: its strand a class and identifier, not a
    ``concurrency_key``'s (``store.common.tracked`` in SQL)."""
    return strand is not None and not strand.startswith(MARK)


def countable(attempts: int) -> bool:
    """An attempt count the worker can add one to and write back."""
    return 0 <= attempts < ATTEMPTS_LIMIT


def readable(name: str, value: Any) -> bool:
    """Whether column ``name`` holds a value a ``Job`` can mean."""
    kinds = KINDS.get(name)
    return kinds is None or isinstance(value, kinds) and (name != "attempts" or countable(value))


def defect_in(values: Mapping[str, Any]) -> str | None:
    """The first value of a row a ``Job`` cannot hold, as one line naming the column; else None."""
    for name, value in values.items():
        if not readable(name, value):
            quoted = repr(value)
            quoted = quoted if len(quoted) <= QUOTED else quoted[:QUOTED] + "..."
            return f"{name} is not {'a valid date' if datetime in KINDS[name] else 'usable'}: {quoted}"
    return None


@dataclass(frozen=True)
class Job:
    """One row of ``delayed_jobs`` as the worker and the CLIs see it.

    A row holding a value its column cannot mean (see ``KINDS``) still becomes a
    ``Job``, so that it can be shown and failed by id: ``defect`` says what is
    wrong, and each unreadable value is replaced by a stand-in (``STAND_INS``).
    """

    id: int
    priority: int
    attempts: int
    handler: str
    queue: str | None
    run_at: datetime | None  # None only in a defective job
    locked_at: datetime | None = None
    locked_by: str | None = None
    failed_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    strand: str | None = None
    strand_limit: int | None = None  #: how many of its strand run at once (None: a tracked job's one); admin reads only
    defect: str | None = None
    #: the key its handler names (``unique``), set by the worker that decoded it: its key row
    #: goes with it; no column of ``delayed_jobs``
    unique_key: str | None = None

    @classmethod
    def reserved(cls, job_id: int, priority: int, attempts: int, handler: str, queue: str | None,
                 run_at: datetime | None, locked_at: datetime, locked_by: str, strand: str | None) -> "Job":
        """A job just reserved, built without the frozen ``__init__``, which sets its fifteen fields
        one ``object.__setattr__`` at a time: 2.2 µs against 0.65 µs here, for each job of every
        reservation. The same instance as the constructor's (equal, same hash), unchecked."""
        job = _new_object(cls)
        values = _DEFAULTS.copy()
        values.update(id=job_id, priority=priority, attempts=attempts, handler=handler, queue=queue, run_at=run_at,
                      locked_at=locked_at, locked_by=locked_by, strand=strand)
        _set_attribute(job, "__dict__", values)
        return job

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Job":
        """Build from a result row mapping (extra columns are ignored); never raises for its values."""
        values = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        return cls(**values).checked()

    def checked(self) -> "Job":
        """This job, or, if one of its values is unreadable, a defective copy (the rare path)."""
        defect = defect_in(vars(self))
        if defect is None:
            return self
        stand_ins = {name: STAND_INS.get(name) for name, value in vars(self).items() if not readable(name, value)}
        return replace(self, **stand_ins, defect=defect)

    @property
    def tracked(self) -> bool:
        """Whether it is a tracked job (see ``tracks``)."""
        return tracks(self.strand)

    @property
    def name(self) -> str:
        """A display name from the handler, e.g. ``mailer:send``; never raises."""
        return display_name(self.handler)

    @property
    def state(self) -> str:
        """``failed``, ``defective`` (see ``defect``), ``running`` or ``waiting``: what the jobs CLI shows."""
        if self.failed_at is not None:
            return "failed"
        if self.defect is not None:
            return "defective"
        return "running" if self.locked_by else "waiting"

    def log_context(self) -> str:
        """``id=7 mailer:send queue=mail attempt=2``, for one-line logs."""
        return f"id={self.id} {self.name} queue={self.queue or '-'} attempt={self.attempts + 1}"


_new_object, _set_attribute = object.__new__, object.__setattr__
#: Every field of a ``Job`` with its default (``Job.reserved`` fills in the rest)
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Job)}

#: What a defective job holds instead of an unreadable value (None for the others).
STAND_INS: dict[str, Any] = {"priority": 0, "attempts": 0, "handler": ""}


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

