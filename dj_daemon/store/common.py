"""Dialect-neutral statements the store face is built from.

The one ``ready`` predicate lives here, shared by every way of reserving.
Statements on the hot path are built once per worker filter, with bound
parameters (``now``, ``stale``, ``limit``, ``ids``...), and reused: building
an SQLAlchemy expression costs more than the round trip it describes.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, exists, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..job import Job
from ..schema import delayed_jobs as dj


@dataclass(frozen=True)
class Filters:
    """Which jobs a worker takes: queues (empty: any), a priority range, the lock age limit."""

    queues: tuple[str, ...] = ()
    min_priority: int | None = None
    max_priority: int | None = None
    max_run_time: float = 4 * 3600.0


def params(filters: Filters, now: datetime, **more: Any) -> dict[str, Any]:
    """The bound values of the ``ready`` predicate."""
    return {"now": now, "stale": now - timedelta(seconds=filters.max_run_time), **more}


def unlocked() -> ColumnElement[bool]:
    """Not locked, or locked before ``:stale`` (max run time ago: its worker is presumed dead)."""
    return or_(dj.c.locked_at.is_(None), dj.c.locked_at < bindparam("stale"))


def first_in_strand() -> ColumnElement[bool]:
    """No earlier live job of the same strand: tracked jobs of one identifier run in order.

    A job failed for good no longer holds its strand back. MySQL and
    PostgreSQL do not lock the subquery's rows in a ``FOR UPDATE`` select.
    """
    earlier = dj.alias("earlier")
    return or_(dj.c.strand.is_(None), ~exists().where(
        earlier.c.strand == dj.c.strand, earlier.c.id < dj.c.id, earlier.c.failed_at.is_(None)))


def ready(filters: Filters) -> ColumnElement[bool]:
    """Runnable at ``:now``: due, not failed, unlocked, first of its strand, within the filters."""
    clauses = [dj.c.run_at <= bindparam("now"), dj.c.failed_at.is_(None), unlocked(), first_in_strand()]
    if filters.queues:
        clauses.append(dj.c.queue.in_(filters.queues))
    if filters.min_priority is not None:
        clauses.append(dj.c.priority >= filters.min_priority)
    if filters.max_priority is not None:
        clauses.append(dj.c.priority <= filters.max_priority)
    return and_(*clauses)


ORDER = (dj.c.priority, dj.c.run_at, dj.c.id)
IDS = bindparam("ids", expanding=True)
#: what a worker needs of a job it reserves: the lock columns it sets itself, and a ready
#: job's failed_at is NULL; each timestamp not read saves its conversion, per job
RESERVED = (dj.c.id, dj.c.priority, dj.c.attempts, dj.c.handler, dj.c.queue, dj.c.run_at, dj.c.strand)

#: A new job's row, bound from ``NewJob.params``: one ``now`` for created_at and updated_at, as
#: drivers that interpolate (PyMySQL) convert every bound value of every row, and a datetime is
#: their dearest. Each value stays a bare parameter: PyMySQL turns an executemany into
#: multi-row INSERTs only then (no SQL literal or function in VALUES).
_NOW = bindparam("now", type_=dj.c.created_at.type)
INSERT_JOB = dj.insert().values(created_at=_NOW, updated_at=_NOW)


@functools.lru_cache(maxsize=64)
def ready_rows(filters: Filters, skip_locked: bool) -> Select:
    """The reservation's SELECT; SKIP LOCKED where the server has it."""
    query = select(*RESERVED).where(ready(filters)).order_by(*ORDER).limit(bindparam("limit", type_=Integer))
    return query.with_for_update(skip_locked=True) if skip_locked else query


@functools.lru_cache(maxsize=64)
def any_ready(filters: Filters) -> Select:
    """The supervisor's idle poll: one id, if any job is ready."""
    return select(dj.c.id).where(ready(filters)).limit(1)


STAMP = update(dj).where(dj.c.id.in_(IDS)).values(
    locked_at=bindparam("now"), locked_by=bindparam("worker"), updated_at=bindparam("now"))
UNLOCK = update(dj).where(dj.c.id.in_(IDS), dj.c.locked_by == bindparam("worker")).values(
    locked_at=None, locked_by=None, updated_at=bindparam("now"))


def stamp(conn: Connection, ids: list[int], worker: str, now: datetime) -> None:
    """Mark ``ids`` as locked by ``worker``."""
    conn.execute(STAMP, {"ids": ids, "worker": worker, "now": now})


def reserve_locking(conn: Connection, worker: str, filters: Filters, now: datetime,
                    limit: int, skip_locked: bool) -> list[Job]:
    """Select ready rows (row-locked, skipping rows others hold, where supported), then stamp them.

    On SQLite the transaction is already ``BEGIN IMMEDIATE``, which serialises
    writers, so the plain select is safe there.
    """
    rows = cut_batch(conn.execute(ready_rows(filters, skip_locked), params(filters, now, limit=limit))
                     .mappings().all())
    if not rows:
        return []
    stamp(conn, [row["id"] for row in rows], worker, now)
    return [Job.from_row({**row, "locked_at": now, "locked_by": worker}) for row in rows]


def cut_batch(rows: list[Any]) -> list[Any]:
    """A batch is a run of untracked jobs, or one tracked job alone.

    Tracked jobs are the long ones; reserved alone, each passes its drain
    gate right before it starts, and never waits behind another job.
    """
    if rows and rows[0]["strand"] is not None:
        return rows[:1]
    return next((rows[:i] for i, row in enumerate(rows) if row["strand"] is not None), rows)


def unlock(conn: Connection, ids: list[int], worker: str, now: datetime) -> None:
    """Give back jobs this worker reserved but will not start (no attempt counted)."""
    if ids:
        conn.execute(UNLOCK, {"ids": ids, "worker": worker, "now": now})


def reserve_optimistic(conn: Connection, worker: str, filters: Filters, now: datetime,
                       limit: int) -> list[Job]:
    """delayed_job's fallback: claim with one guarded ``UPDATE``, then read back what we got.

    The candidate ids come through a derived table, which MySQL allows where
    it refuses ``LIMIT`` in an ``IN`` subquery; ``unlocked`` is repeated in the
    UPDATE itself so that a row another worker claimed first is not taken.
    """
    candidates = (select(dj.c.id).where(ready(filters)).order_by(*ORDER)
                  .limit(bindparam("limit", type_=Integer)).subquery("c"))
    claimed = conn.execute(
        update(dj)
        .where(dj.c.id.in_(select(candidates.c.id)), unlocked())
        .values(locked_at=bindparam("now"), locked_by=bindparam("worker"), updated_at=bindparam("now")),
        params(filters, now, limit=limit, worker=worker),
    ).rowcount
    if not claimed:
        return []
    rows = conn.execute(
        select(*RESERVED).where(dj.c.locked_by == worker, dj.c.locked_at == now).order_by(*ORDER)
    ).mappings().all()
    kept = cut_batch(rows)
    unlock(conn, [row["id"] for row in rows[len(kept):]], worker, now)
    return [Job.from_row({**row, "locked_at": now, "locked_by": worker}) for row in kept]


def changes_on_failure(attempts: int, error: str, now: datetime, *, run_at: datetime | None) -> dict[str, Any]:
    """Column values for a failed run: rescheduled at ``run_at``, or failed for good if None."""
    values: dict[str, Any] = {"attempts": attempts, "last_error": error, "locked_at": None,
                              "locked_by": None, "updated_at": now}
    if run_at is None:
        values["failed_at"] = now
    else:
        values["run_at"] = run_at
    return values
