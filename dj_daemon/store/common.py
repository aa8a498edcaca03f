"""Dialect-neutral statements the store face is built from.

The one ``ready`` predicate lives here, shared by every way of reserving.
Statements on the hot path are built once per worker filter (and per batch
size, for those that name each id), with bound parameters (``now``,
``stale``, ``limit``, ``id0``...), and reused: building an SQLAlchemy
expression costs more than the round trip it describes.

The ready queries read due rows only, however many jobs wait for a later
``run_at`` or have failed for good: a ``Due`` clause bounds their index scan
to one range per stored priority (``priority = p``, not failed, ``run_at <=
now``) on ``ix_delayed_jobs_due``, whose ranges come in the reservation's
order. The dialect module says how the priorities are found: in the same
statement by a recursive CTE of index probes (``StoredPriorities``), or, where
the server's optimizer does not bound that (MariaDB), from a list read by a
loose index scan every few seconds (``ListedPriorities``); a stale list still
gives the same rows, as the ranges between the listed priorities are read too.
docs/performance.md ("Stored rows") has the plans and the rows read.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

from sqlalchemy import (
    ARRAY, Column, DateTime, Delete, Integer, Label, Select, TypeDecorator, Update, and_, any_, bindparam, cast,
    delete, exists, func, literal, or_, select, type_coerce, update,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.elements import ColumnElement

from ..concurrency import MARK
from ..job import KINDS, Job, countable
from ..schema import delayed_jobs as dj
from .prepared import execute


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


def within_limit() -> ColumnElement[bool]:
    """Fewer earlier live jobs of the same strand than its limit (``concurrency``): tracked jobs
    of one identifier run one at a time in order, jobs of one ``concurrency_key`` at most
    ``strand_limit`` at once.

    A job failed for good holds no place. The first job of its strand is found by one probe of
    ``ix_delayed_jobs_strand``. Under a limit above one, a later job is looked up among the
    first ``strand_limit`` live jobs of each limited strand, ranked once per statement
    (``limited_heads``), so that each waiting job of a long backlog costs one lookup, not a
    count of the jobs ahead of it. MySQL and PostgreSQL do not lock the subqueries' rows in a
    ``FOR UPDATE`` select.
    """
    earlier = dj.alias("earlier")
    first = ~exists().where(earlier.c.strand == dj.c.strand, earlier.c.id < dj.c.id, earlier.c.failed_at.is_(None))
    return or_(dj.c.strand.is_(None), first, and_(dj.c.strand_limit > 1, dj.c.id.in_(limited_heads())))


def limited_heads() -> Select:
    """The ids of the live jobs that their strand's limit lets start, among strands of
    ``concurrency_key`` jobs (their ``strand_limit`` is set; a tracked strand's is not): each
    strand's rows ranked by id along ``ix_delayed_jobs_strand``, the first ``strand_limit``."""
    live = dj.alias("live")
    ranked = select(live.c.id, live.c.strand_limit,
                    func.row_number().over(partition_by=live.c.strand, order_by=live.c.id).label("place")).where(
        live.c.strand.is_not(None), live.c.strand_limit.is_not(None), live.c.failed_at.is_(None)).subquery("ranked")
    return select(ranked.c.id).where(ranked.c.place <= ranked.c.strand_limit)


def tracked() -> ColumnElement[bool]:
    """Rows of tracked jobs: a strand that is not a ``concurrency_key``'s (``Job.tracked``)."""
    return and_(dj.c.strand.is_not(None), ~dj.c.strand.startswith(MARK, autoescape=True))


def ready(filters: Filters, due: "Bound | None" = None) -> ColumnElement[bool]:
    """Runnable at ``:now``: due, not failed, unlocked, within its strand's limit, within the filters.
    ``due`` (a ``Due.clause``) bounds the index scan to due rows; by primary key, none is needed."""
    clauses = [dj.c.run_at <= bindparam("now") if due is None else due.where, dj.c.failed_at.is_(None), unlocked(),
               within_limit()]
    if filters.queues:  # one bound value each, held by the statement: SQL written once (``prepared``)
        clauses.append(dj.c.queue.in_([literal(queue, dj.c.queue.type) for queue in filters.queues]))
    if filters.min_priority is not None:
        clauses.append(dj.c.priority >= filters.min_priority)
    if filters.max_priority is not None:
        clauses.append(dj.c.priority <= filters.max_priority)
    return and_(*clauses)


def stored_priorities() -> Select:
    """The distinct priorities of jobs not failed, as a loose index scan that PostgreSQL and SQLite
    do not make by themselves: each step of the recursive CTE is one probe of
    ``ix_delayed_jobs_due`` for the least priority above the last (the last row is NULL)."""
    first = select(func.min(dj.c.priority).label("p")).where(dj.c.failed_at.is_(None)).cte("priorities", recursive=True)
    last = first.alias("last")
    above = select(func.min(dj.c.priority)).where(dj.c.failed_at.is_(None), dj.c.priority > last.c.p)
    found = first.union_all(select(above.scalar_subquery()).where(last.c.p.is_not(None)))
    return select(found.c.p)


class Bound:
    """The ``run_at <= :now`` clause of ``ready``, in a form whose scan is bounded. Compared by
    identity, as a key of the statement caches (an SQL clause's ``==`` builds SQL)."""

    __slots__ = ("where",)

    def __init__(self, where: ColumnElement[bool]) -> None:
        self.where = where


class Due:
    """How a dialect's ready queries reach due rows only (see the module docstring)."""

    def clause(self, conn: Connection) -> Bound:
        """The bounded clause to use in ``conn`` now."""
        raise NotImplementedError


@dataclass(eq=False)
class StoredPriorities(Due):
    """Priorities found in the same statement: ``IN`` the CTE (SQLite), or ``= ANY`` of them as
    an array (PostgreSQL, whose btree reads an array's values in order, one range each)."""

    as_array: bool = False

    @functools.cached_property
    def _clause(self) -> Bound:
        stored = stored_priorities()
        if self.as_array:
            found = any_(cast(select(func.array_agg(stored.selected_columns.p)).scalar_subquery(), ARRAY(Integer)))
            return Bound(and_(dj.c.run_at <= bindparam("now"), dj.c.priority == found))
        return Bound(and_(dj.c.run_at <= bindparam("now"), dj.c.priority.in_(stored)))

    def clause(self, conn: Connection) -> Bound:
        return self._clause


#: Seconds a ``ListedPriorities`` list is used before it is read again.
PRIORITIES_TTL = 10.0
#: The stored priorities, by a loose index scan on ``ix_delayed_jobs_due`` (MariaDB: one read each)
DISTINCT_PRIORITIES = select(dj.c.priority).distinct().order_by(dj.c.priority)


@dataclass(eq=False)
class ListedPriorities(Due):
    """Priorities listed in the statement, read every ``PRIORITIES_TTL`` seconds on the
    connection at hand. One range per listed priority, and one for each gap between them,
    where a priority stored since the list was read is found (its future and failed rows are
    read too, until the next list). The server reads ranges in order: no sort."""

    listed: tuple[int, ...] = ()
    read_at: float = field(default=float("-inf"))

    def clause(self, conn: Connection) -> Bound:
        if time.monotonic() - self.read_at > PRIORITIES_TTL:
            self.listed = tuple(conn.execute(DISTINCT_PRIORITIES).scalars())
            self.read_at = time.monotonic()
        return listed_due(self.listed)


@functools.lru_cache(maxsize=16)
def listed_due(priorities: tuple[int, ...]) -> Bound:
    """``run_at <= :now``, as ranges per listed priority and between them (``ListedPriorities``)."""
    due = dj.c.run_at <= bindparam("now")
    if not priorities:
        return Bound(due)
    ranges = [and_(dj.c.priority == p, dj.c.failed_at.is_(None), due) for p in priorities]
    gaps = [dj.c.priority < priorities[0], dj.c.priority > priorities[-1]]
    gaps += [and_(dj.c.priority > low, dj.c.priority < high) for low, high in zip(priorities, priorities[1:])]
    return Bound(and_(due, or_(*ranges, *gaps)))


class LenientTime(TypeDecorator[Any]):
    """A time column read as a datetime, or as the value stored when that is none (SQLite keeps
    any text in a DATETIME column, whose converter would raise for the whole result; MariaDB's
    zero dates come back from PyMySQL as text already). ``Job.checked`` then names the value."""

    impl = DateTime
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        convert = self.impl_instance.result_processor(dialect, coltype)
        if convert is None:
            return None

        def lenient(value: Any) -> Any:
            try:
                return convert(value)
            except (ValueError, TypeError):
                return value
        return lenient


def leniently(column: Column[Any]) -> Label[Any]:
    """``column``, read with ``LenientTime`` if it holds times, under its own name."""
    read = type_coerce(column, LenientTime) if isinstance(column.type, DateTime) else column
    return read.label(column.name)


#: every column of ``delayed_jobs``, times read leniently: what the operators' readers show
EVERY_COLUMN = tuple(leniently(column) for column in dj.c)
ORDER = (dj.c.priority, dj.c.run_at, dj.c.id)
IDS = bindparam("ids", expanding=True)
#: what a worker needs of a job it reserves: the lock columns it sets itself, and a ready
#: job's failed_at is NULL; each timestamp not read saves its conversion, per job
RESERVED = (dj.c.id, dj.c.priority, dj.c.attempts, dj.c.handler, dj.c.queue, leniently(dj.c.run_at), dj.c.strand)
#: what each of those must hold (``job.KINDS``), checked per reserved row at C speed
RESERVED_KINDS = tuple(KINDS.get(column.name, (int,)) for column in RESERVED)
#: places in a ``RESERVED`` row (read by position: the hot path's rows are the driver's, see ``prepared``)
ID, STRAND = 0, 6

#: A new job's row, bound from ``NewJob.params``: one ``now`` for created_at and updated_at, as
#: drivers that interpolate (PyMySQL) convert every bound value of every row, and a datetime is
#: their dearest. Each value stays a bare parameter: PyMySQL turns an executemany into
#: multi-row INSERTs only then (no SQL literal or function in VALUES).
_NOW = bindparam("now", type_=dj.c.created_at.type)
INSERT_JOB = dj.insert().values(created_at=_NOW, updated_at=_NOW)


@functools.lru_cache(maxsize=64)
def ready_rows(filters: Filters, skip_locked: bool, due: Bound) -> Select:
    """The reservation's SELECT; SKIP LOCKED where the server has it."""
    query = select(*RESERVED).where(ready(filters, due)).order_by(*ORDER).limit(bindparam("limit", type_=Integer))
    return query.with_for_update(skip_locked=True) if skip_locked else query


@functools.lru_cache(maxsize=64)
def any_ready(filters: Filters, due: Bound) -> Select:
    """The supervisor's idle poll: one id, if any job is ready."""
    return select(dj.c.id).where(ready(filters, due)).limit(1)


def by_ids(ids: Sequence[int], **values: Any) -> dict[str, Any]:
    """Bound values for a statement of ``for_ids(len(ids))``."""
    return {**{f"id{i}": job_id for i, job_id in enumerate(ids)}, **values}


def for_ids(count: int) -> ColumnElement[bool]:
    """``id IN (:id0, ..., :idN)``: the hot path's statements are built per batch size and
    kept (``stamp_of``, ``delete_finished_of``), where an expanding ``IN`` is rendered anew
    at every execution (13% of a reservation's CPU on SQLite under cProfile)."""
    return dj.c.id.in_([bindparam(f"id{i}", type_=dj.c.id.type) for i in range(count)])


@functools.lru_cache(maxsize=256)
def stamp_of(count: int) -> Update:
    """Mark ``count`` reserved rows as locked by ``:worker`` at ``:now``."""
    return update(dj).where(for_ids(count)).values(
        locked_at=bindparam("now"), locked_by=bindparam("worker"), updated_at=bindparam("now"))


@functools.lru_cache(maxsize=256)
def delete_finished_of(count: int) -> Delete:
    """Delete ``count`` finished rows, only while ``:worker`` still holds them."""
    return delete(dj).where(for_ids(count), dj.c.locked_by == bindparam("worker"))


UNLOCK = update(dj).where(dj.c.id.in_(IDS), dj.c.locked_by == bindparam("worker")).values(
    locked_at=None, locked_by=None, updated_at=bindparam("now"))


def reserve_locking(conn: Connection, worker: str, filters: Filters, now: datetime,
                    limit: int, skip_locked: bool, due: Due) -> list[Job]:
    """Select ready rows (row-locked, skipping rows others hold, where supported), then stamp them.

    On SQLite the transaction is already ``BEGIN IMMEDIATE``, which serialises
    writers, so the plain select is safe there.
    """
    rows = execute(conn, ready_rows(filters, skip_locked, due.clause(conn)), params(filters, now, limit=limit))
    return _stamped(conn, cut_batch(rows), worker, now)


@functools.lru_cache(maxsize=64)
def ready_ids(filters: Filters, due: Bound, skipped: int = 0) -> Select:
    """The best ready ids, read without locking anything, but for ``skipped`` ids bound as
    ``:x0``... (candidates just found taken by other workers: see ``reserve_by_id``)."""
    query = select(dj.c.id).where(ready(filters, due))
    if skipped:
        query = query.where(dj.c.id.not_in([bindparam(f"x{i}", type_=dj.c.id.type) for i in range(skipped)]))
    return query.order_by(*ORDER).limit(bindparam("limit", type_=Integer))


@functools.lru_cache(maxsize=256)
def lock_ready_of(filters: Filters, count: int) -> Select:
    """Lock those of ``count`` ids that are still ready, skipping rows others hold (a range on
    the primary key: it holds only the rows it returns, which tests/store checks)."""
    return select(*RESERVED).where(for_ids(count), ready(filters)).with_for_update(skip_locked=True)


#: Candidates read per job wanted. More spare collisions between workers but cost every
#: reservation their parsing: 2 was best at -n 2 (12,000-12,400 jobs/s against 11,600 with 4).
CANDIDATES = 2
#: Reads past candidates all found taken before the one-step locking read decides: at -n 4 on two
#: cores, 41 reservations in 100 found every candidate taken and fell back to the one-step read
#: (4-5 ms under purge lag), as four workers read the same best ids (docs/performance.md).
FURTHER = 2


def reserve_by_id(conn: Connection, worker: str, filters: Filters, now: datetime, limit: int,
                  due: Due) -> list[Job]:
    """``reserve_locking`` in two steps, for InnoDB: find the best ready ids with a plain read,
    then lock those still ready by primary key (``FOR UPDATE SKIP LOCKED``), then stamp them.

    InnoDB makes a locking read through a secondary index check every index record
    it passes for an implicit lock, walking row versions while purge lags behind
    the deletes of a busy queue: 4-5 ms for 50 rows here, against 0.7 ms for the
    plain read plus 0.8 ms for the locking read by id (docs/performance.md).
    ``CANDIDATES`` times ``limit`` ids are read, and locked a slice at a time, so
    that a worker that finds the best ones just taken by another takes the next
    ones; the ready predicate is checked again under the lock, so nothing taken
    or changed meanwhile is reserved. If every candidate was taken (other workers
    read the same best ids), the next best are read, leaving out exactly those
    found taken: no job is passed over that nobody holds, and priority order
    stands. Only after ``FURTHER`` such reads does the one-step locking read decide.
    """
    values = params(filters, now)
    taken: list[int] = []
    for _ in range(FURTHER + 1):
        query = ready_ids(filters, due.clause(conn), len(taken))
        skipped = {f"x{i}": job_id for i, job_id in enumerate(taken)}
        candidates = [row[0] for row in execute(conn, query, {**values, **skipped, "limit": CANDIDATES * limit})]
        if not candidates:
            return []  # nothing ready, or nothing but what others hold
        rows = _lock_candidates(conn, filters, candidates, limit, values)
        if rows:
            return _stamped(conn, cut_batch(rows), worker, now)
        taken += candidates
    return reserve_locking(conn, worker, filters, now, limit, skip_locked=True, due=due)


def _lock_candidates(conn: Connection, filters: Filters, candidates: Sequence[int], limit: int,
                     values: dict[str, Any]) -> list[Any]:
    """Lock up to ``limit`` of ``candidates`` still ready, a slice at a time, in their order."""
    rows: list[Any] = []
    start = 0
    while len(rows) < limit and start < len(candidates):
        part = candidates[start:start + limit - len(rows)]
        start += len(part)
        rows += execute(conn, lock_ready_of(filters, len(part)), by_ids(part, **values))
    place = {job_id: index for index, job_id in enumerate(candidates)}
    rows.sort(key=lambda row: place[row[ID]])  # the server's ORDER: no stored value compared in Python
    return rows


def _stamped(conn: Connection, rows: Sequence[Any], worker: str, now: datetime) -> list[Job]:
    """Mark reserved rows as ``worker``'s; the jobs to run."""
    if not rows:
        return []
    execute(conn, stamp_of(len(rows)), by_ids([row[ID] for row in rows], worker=worker, now=now))
    return [reserved_job(row, worker, now) for row in rows]


def reserved_job(row: Any, worker: str, now: datetime) -> Job:
    """A ``RESERVED`` row, locked by ``worker`` at ``now``, as a ``Job`` (built positionally: a
    mapping, a dict and a keyword call per row were a quarter of a reservation's CPU on SQLite
    under cProfile). A row holding an unreadable value becomes a defective job, for the worker
    to fail by id (``Job.checked``)."""
    job_id, priority, attempts, handler, queue, run_at, strand = row
    job = Job.reserved(job_id, priority, attempts, handler, queue, run_at, now, worker, strand)
    return job if all(map(isinstance, row, RESERVED_KINDS)) and countable(attempts) else job.checked()


def cut_batch(rows: list[Any]) -> list[Any]:
    """A batch is a run of untracked jobs, or one tracked job alone.

    Tracked jobs are the long ones; reserved alone, each passes its drain
    gate right before it starts, and never waits behind another job.
    """
    if rows and rows[0][STRAND] is not None:
        return rows[:1]
    return next((rows[:i] for i, row in enumerate(rows) if row[STRAND] is not None), rows)


def unlock(conn: Connection, ids: list[int], worker: str, now: datetime) -> None:
    """Give back jobs this worker reserved but will not start (no attempt counted)."""
    if ids:
        conn.execute(UNLOCK, {"ids": ids, "worker": worker, "now": now})


def held_by(conn: Connection, worker: str) -> list[int]:
    """The ids of the jobs ``worker`` holds, in the order it runs them (a range of the
    ``locked_by`` index)."""
    return list(conn.execute(select(dj.c.id).where(dj.c.locked_by == worker).order_by(*ORDER)).scalars())


def reserve_optimistic(conn: Connection, worker: str, filters: Filters, now: datetime,
                       limit: int, due: Due) -> list[Job]:
    """delayed_job's fallback: claim with one guarded ``UPDATE``, then read back what we got.

    The candidate ids come through a derived table, which MySQL allows where
    it refuses ``LIMIT`` in an ``IN`` subquery; ``unlocked`` is repeated in the
    UPDATE itself so that a row another worker claimed first is not taken.
    """
    candidates = (select(dj.c.id).where(ready(filters, due.clause(conn))).order_by(*ORDER)
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
    ).all()
    kept = cut_batch(rows)
    unlock(conn, [row[ID] for row in rows[len(kept):]], worker, now)
    return [reserved_job(row, worker, now) for row in kept]


def changes_on_failure(attempts: int, error: str, now: datetime, *, run_at: datetime | None) -> dict[str, Any]:
    """Column values for a failed run: rescheduled at ``run_at``, or failed for good if None."""
    values: dict[str, Any] = {"attempts": attempts, "last_error": error, "locked_at": None,
                              "locked_by": None, "updated_at": now}
    if run_at is None:
        values["failed_at"] = now
    else:
        values["run_at"] = run_at
    return values
