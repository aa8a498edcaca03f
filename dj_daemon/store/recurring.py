"""The recurring runs table (``delayed_job_recurring_runs``): one row per occurrence enqueued.

An occurrence's job and its row go in one transaction, the row's primary key
``(name, occurrence)`` making a second one impossible: a host that loses the
race gets the dialect's duplicate-key error (``IntegrityError`` on all three,
after InnoDB has made it wait for the winner's commit), and its whole
transaction, job included, is rolled back. That is Solid Queue's
``recurring_executions`` unique index and Oban's unique cron key.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..job import NewJob
from ..schema import recurring_runs as rr

#: Rows kept per entry, at least; younger rows are kept too (see ``prune``).
KEEP = 10
#: How long after an occurrence its row is kept at least, beyond the entry's grace: a host whose
#: database was away that long may still try it (as missed) when it comes back.
KEEP_FOR = timedelta(days=1)


class LastRun(NamedTuple):
    """An entry's latest enqueued occurrence, its job, and the host that enqueued it."""

    occurrence: datetime
    job_id: int | None
    hostname: str
    enqueued_at: datetime


class _Taken(Exception):
    """Another host enqueued that occurrence first: roll this transaction back."""


def enqueue(store: Any, name: str, occurrence: datetime, new: NewJob, host: str) -> int | None:
    """Insert ``new`` and its run row in one transaction; the job's id, or None when another
    host already enqueued ``occurrence`` of ``name`` (nothing of ours is then left)."""

    def work(conn: Connection) -> int:
        job_id = store.insert([new], conn)[0]
        try:
            conn.execute(rr.insert().values(name=name, occurrence=occurrence, job_id=job_id, hostname=host,
                                            enqueued_at=store.clock()))
        except IntegrityError:
            raise _Taken from None
        return job_id

    try:
        return store.transaction(work)
    except _Taken:
        return None


def last_runs(store: Any) -> dict[str, LastRun]:
    """Each entry's latest run: one grouped read of the key, then its rows."""
    latest = select(rr.c.name, func.max(rr.c.occurrence).label("occurrence")).group_by(rr.c.name).subquery()
    query = select(rr.c.name, rr.c.occurrence, rr.c.job_id, rr.c.hostname, rr.c.enqueued_at).join(
        latest, and_(rr.c.name == latest.c.name, rr.c.occurrence == latest.c.occurrence))
    rows = store.transaction(lambda conn: conn.execute(query).all())
    return {row.name: LastRun(row.occurrence, row.job_id, row.hostname, row.enqueued_at) for row in rows}


def prune(store: Any, name: str, before: datetime) -> int:
    """Delete ``name``'s rows older than ``before`` beyond its latest ``KEEP``; returns how many.
    A host never tries an occurrence older than the entry's grace, nor (as missed) older than
    its last one, so what is kept is all that can still be raced for."""

    def work(conn: Connection) -> int:
        kept = conn.execute(select(rr.c.occurrence).where(rr.c.name == name).order_by(rr.c.occurrence.desc())
                            .offset(KEEP - 1).limit(1)).scalar()
        if kept is None:
            return 0
        cutoff = min(kept, before)
        return conn.execute(delete(rr).where(rr.c.name == name, rr.c.occurrence < cutoff)).rowcount

    return store.transaction(work)
