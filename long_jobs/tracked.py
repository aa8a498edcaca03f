"""Tracked jobs as the operators see them: one job with its work-queue row, a page of them, one
job's detail with its history. Plain values, built from the store's rows; no DB, no printing.

A tracked job between two attempts is ``enqueued`` in the states table (a
retry is no state of its own); its queue row says more: ``attempts`` failed
runs so far and the ``last_error``. ``shown_state`` tells it as
``retrying (attempt 7 of 25: <error>)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Mapping

from dj_daemon.store.history import note_of
from dj_daemon.tracking import State

#: What a history entry made from the tracked row's own times says (rows made before history was kept).
FROM_ROW = "from the tracked row's times (made before its history was kept)"


@dataclass(frozen=True)
class TrackedJob:
    """One tracked row and what its live work-queue row adds (None where it has none)."""

    id: int
    job_class: str
    identifier: str
    gate: str
    state: str
    hostname: str | None
    delayed_job_id: int | None
    queue: str | None
    priority: int
    last_error: str | None  #: the tracked row's: the error that ended it, or of its last failed attempt
    created_at: Any  #: times are datetimes (naive UTC), or what a hand-written row holds instead
    updated_at: Any
    started_at: Any
    finished_at: Any
    max_attempts: int  #: the config's; a job class's own ``max_attempts`` is not known here
    attempts: int | None = None  #: failed runs so far, from the queue row
    queue_error: str | None = None  #: the queue row's last error, with its traceback
    run_at: Any = None  #: when the queue row is due (next attempt)
    locked_at: Any = None
    locked_by: str | None = None  #: the worker running it
    failed_at: Any = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], max_attempts: int) -> "TrackedJob":
        names = {f.name for f in fields(cls)} - {"max_attempts"}
        return cls(max_attempts=max_attempts, **{name: row.get(name) for name in names})

    @property
    def retrying(self) -> bool:
        """Waiting in the queue after at least one failed attempt."""
        return (self.state == State.ENQUEUED.value and bool(self.attempts) and self.failed_at is None
                and self.locked_by is None)

    @property
    def error(self) -> str | None:
        """The latest error known: the queue row's while it has one, else the tracked row's."""
        return self.queue_error or self.last_error

    @property
    def shown_state(self) -> str:
        """The state as ``long_jobs list`` and the web page show it."""
        if self.retrying:
            return f"retrying (attempt {self.attempts + 1} of {self.max_attempts}: {note_of(self.error) or '?'})"
        return self.state


@dataclass(frozen=True)
class TrackedPage:
    """A page of tracked jobs, newest first; ``next_before`` pages on (None: this was the last)."""

    jobs: list[TrackedJob]
    next_before: int | None
    limit: int


@dataclass(frozen=True)
class HistoryEntry:
    """A state the job entered: when, on which host, and why (an error's first line, an operator's act)."""

    state: str
    at: Any
    hostname: str | None = None
    note: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "HistoryEntry":
        return cls(row["state"], row["at"], row["hostname"], row["note"])


@dataclass(frozen=True)
class TrackedDetail:
    """One tracked job: its row and queue row, the payload that enqueues it again, its history."""

    job: TrackedJob
    payload: str
    history: list[HistoryEntry] = field(default_factory=list)


def history_of(job: TrackedJob, kept: list[HistoryEntry]) -> list[HistoryEntry]:
    """The kept history, preceded by what the row's own times tell where it starts later than the
    job (a row made before the history table): enqueued at ``created_at``, then, with no kept
    entry at all, running at ``started_at`` and the state it is in at ``finished_at``."""
    if kept and kept[0].state == State.ENQUEUED.value and kept[0].at == job.created_at:
        return kept
    known = [HistoryEntry(State.ENQUEUED.value, job.created_at, None, FROM_ROW)]
    if not kept:
        if isinstance(job.started_at, datetime):
            known.append(HistoryEntry(State.RUNNING.value, job.started_at, job.hostname, FROM_ROW))
        if job.state not in (State.ENQUEUED.value, State.RUNNING.value):
            known.append(HistoryEntry(job.state, job.finished_at or job.updated_at, job.hostname,
                                      note_of(job.last_error) or FROM_ROW))
    return known + kept
