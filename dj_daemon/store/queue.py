"""The queue verbs: a job's way from insert to reservation to its end.

``insert`` (the enqueue path), ``reserve`` (which deletes the worker's finished
jobs in the same commit), ``complete``, ``release``, ``reschedule``, ``give_up``
and ``destroy_failed`` (a worker ending a job it holds), and ``has_ready``, the
supervisor's idle poll. Each is one short transaction of ``Database``, and
moves a tracked job's state in it (``states``), and a unique job's key
(``unique``).
"""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Iterable, NamedTuple, Sequence

from sqlalchemy import Text, delete, func, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..job import Job, NewJob
from ..schema import delayed_jobs as dj
from ..tracking import Gate, State
from . import common, driver, failover, prepared, sqlite, states, unique
from .common import Filters
from .database import Database, _retryable


class Reserved(NamedTuple):
    """What one reservation got: jobs to run, and tracked jobs a closed gate parked instead."""

    jobs: list[Job]
    parked: list[tuple[Job, State]]


def _delete_finished(conn: Connection, jobs: Sequence[Job], now: datetime) -> None:
    """Delete successful jobs still held by their worker; tracked ones become ``completed``."""
    if not jobs:
        return
    ids = [job.id for job in jobs]
    prepared.execute(conn, common.delete_finished_of(len(ids)), common.by_ids(ids, worker=jobs[0].locked_by))
    unique.release(conn, unique.keyed(jobs))
    states.set_state(conn, [j.id for j in jobs if j.tracked], State.COMPLETED, now, finished_at=now,
                     delayed_job_id=None)  # the row is gone; its id may be given to another job


def _insert_single(conn: Connection, job: NewJob, now: datetime) -> int:
    """Insert a tracked or unique job alone; a unique one whose key is held is not inserted, and
    the holder's id is returned."""
    if job.unique is not None:
        holder = unique.claim(conn, job.unique, now)
        if holder is not None:
            return holder
    if job.tracking is not None:
        job_id = states.insert_tracked(conn, job, now)
    else:
        job_id = conn.execute(common.INSERT_JOB, job.params(now)).inserted_primary_key[0]
    if job.unique is not None:
        unique.bind(conn, job.unique, job_id)
    return job_id


def unlock_unstarted(conn: Connection, ids: list[int], worker: str, now: datetime) -> None:
    """Give back jobs ``worker`` holds but never started: no attempt counted; tracked ones are
    ``enqueued`` again."""
    states.set_state(conn, ids, State.ENQUEUED, now)
    common.unlock(conn, ids, worker, now)


class QueueVerbs(Database):
    """The ``Store``'s queue verbs (mixed in), for workers, the supervisor and the enqueue path."""

    def insert(self, jobs: Iterable[NewJob], connection: Connection | None = None) -> list[int]:
        """Insert jobs, in ``connection``'s transaction if given; returns the ids of single and tracked jobs.

        Without a caller's connection, untracked jobs go straight to the driver's
        cursor (see ``driver``): one INSERT, or many rows in one statement (the
        dialect's bulk statement, else an executemany that PyMySQL and psycopg send
        as multi-row INSERTs, sqlite3 as one prepared loop). Otherwise they go in
        one executemany through the ``Connection``, and each tracked job also gets
        its ``enqueued`` state row, and each unique job its key (``store.unique``),
        in the same transaction.
        """
        now = self.clock()
        jobs = list(jobs)
        if not jobs:
            return []
        if connection is None and all(job.tracking is None and job.unique is None for job in jobs):
            rows = [job.params(now) for job in jobs]
            return self._retrying(self._cursors.run, lambda cursor: self._plain_insert.run(cursor, rows))

        single = [job for job in jobs if job.tracking is not None or job.unique is not None]
        plain = [job.params(now) for job in jobs if job.tracking is None and job.unique is None]

        def work(conn: Connection) -> list[int]:
            ids = [_insert_single(conn, job, now) for job in single]
            if len(plain) == 1:
                ids.append(conn.execute(common.INSERT_JOB, plain[0]).inserted_primary_key[0])
            elif plain:
                conn.execute(common.INSERT_JOB, plain)  # executemany: the driver sends multi-row INSERTs
            return ids

        return work(connection) if connection is not None else self.transaction(work)

    @functools.cached_property
    def _plain_insert(self) -> driver.PlainInsert:
        """Compiled on first use, once the dialect has met the server."""
        dialect = self.engine.dialect
        return driver.PlainInsert(dialect, self._dialect.BEGIN, self._dialect.bulk_insert(dialect))

    def reserve(self, worker: str, filters: Filters, limit: int = 1, closed: frozenset[Gate] = frozenset(),
                host: str = "", finished: Sequence[Job] = (), unsure: bool = False) -> Reserved:
        """Delete ``finished`` jobs, then lock up to ``limit`` ready jobs for ``worker``, best first.

        One transaction (one commit) serves both: a worker's completions ride on
        its next reservation. Tracked jobs become ``running`` in it, or, when
        their gate is ``closed`` by a drain sentinel, are parked instead.

        ``unsure``: the worker's last reservation failed, and may have committed
        all the same (its answer lost with the connection), leaving jobs locked
        by ``worker`` that it never got. Between two reservations a worker holds
        nothing but ``finished``, so whatever else it holds is such a stray: it
        is unlocked first, with no attempt counted (never started), and keeps its
        place (its ``run_at``). So too when this transaction is tried again
        after a lost connection. Only then: the hot path pays nothing.

        With nothing ``finished`` and nothing unsure, a dialect that locks in one
        statement (PostgreSQL's ``reserve_at_once``) does so in autocommit: one
        round trip, where the transaction costs four.
        """
        at_once = getattr(self._dialect, "reserve_at_once", None)
        if at_once is not None and not finished and not unsure:
            try:
                jobs = self._autocommitted(lambda conn: at_once(conn, worker, filters, self.clock(), limit, self._due))
                if jobs is not None:
                    return Reserved(jobs, [])
            except DBAPIError as exc:
                if not _retryable(exc):
                    raise self._error(exc) from exc
                unsure = True  # it may have committed: the transaction below unlocks what it left
            except SQLAlchemyError as exc:
                raise self._error(exc) from exc
        tries = 0

        def work(conn: Connection) -> Reserved:
            nonlocal tries
            tries += 1
            now = self.clock()
            _delete_finished(conn, finished, now)
            if unsure or tries > 1:
                unlock_unstarted(conn, common.held_by(conn, worker), worker, now)
            jobs = self.lock_ready(conn, worker, filters, now, limit)
            return Reserved(*states.sort_reserved(conn, jobs, closed, host, now))

        return self.transaction(work)

    def lock_ready(self, conn: Connection, worker: str, filters: Filters, now: datetime, limit: int) -> list[Job]:
        """This server's way to lock up to ``limit`` ready jobs for ``worker`` in ``conn``'s
        transaction (the statements the bench EXPLAINs)."""
        due = self._due
        if self.skip_locked:
            if self._dialect.LOCK_BY_ID:
                return common.reserve_by_id(conn, worker, filters, now, limit, due)
            return common.reserve_locking(conn, worker, filters, now, limit, skip_locked=True, due=due)
        if self._dialect is sqlite:
            return sqlite.reading_bad_text(
                conn, lambda: common.reserve_locking(conn, worker, filters, now, limit, skip_locked=False, due=due))
        return common.reserve_optimistic(conn, worker, filters, now, limit, due)

    def complete(self, *jobs: Job) -> None:
        """Finished jobs' rows go away (only while their worker still holds them)."""
        if jobs:
            self.transaction(lambda conn: _delete_finished(conn, jobs, self.clock()))

    def release(self, jobs: Sequence[Job]) -> None:
        """Give back reserved jobs that will not be started, with no attempt counted."""
        if jobs:
            self.transaction(lambda conn: common.unlock(conn, [j.id for j in jobs], jobs[0].locked_by, self.clock()))

    def has_ready(self, filters: Filters) -> bool:
        """Whether any job is ready for these filters: the supervisor's idle poll.

        On the servers, one statement on a connection kept open in autocommit
        (no COMMIT, no ROLLBACK, no checkout), so that an idle daemon costs one
        query per ``poll_interval``. SQLite polls in a short transaction.
        """
        if self._dialect is sqlite:
            return self.transaction(lambda conn: self.poll_ready(conn, filters))
        try:
            if self._poll_conn is None:
                options = {**self._dialect.engine_options(self.timeout), "isolation_level": "AUTOCOMMIT",
                           "poolclass": NullPool}
                options.pop("pool_recycle", None)
                self._poll_conn = failover.sibling(self.engine, **options).connect()
            return self.poll_ready(self._poll_conn, filters)
        except SQLAlchemyError as exc:
            self._close_poll()
            raise self._error(exc) from exc

    def poll_ready(self, conn: Connection, filters: Filters) -> bool:
        """The idle poll's statement in ``conn`` (the one the bench and tests/store measure)."""
        query = common.any_ready(filters, self._due.clause(conn))
        return conn.execute(query, common.params(filters, self.clock())).first() is not None

    def reschedule(self, job: Job, attempts: int, error: str, run_at: datetime | None) -> None:
        """Record a failed run: try again at ``run_at``, or fail for good when it is None."""
        now = self.clock()
        values = common.changes_on_failure(attempts, error, now, run_at=run_at)

        def work(conn: Connection) -> None:
            conn.execute(update(dj).where(dj.c.id == job.id, dj.c.locked_by == job.locked_by).values(**values))
            if run_at is None:
                unique.release(conn, [job.id])  # failed for good: its key is free (a rare path: by id)
            if job.tracked:
                state, finished = (State.ERROR, now) if run_at is None else (State.ENQUEUED, None)
                states.set_state(conn, [job.id], state, now, last_error=error, finished_at=finished)
        self.transaction(work)

    def give_up(self, job: Job, note: str) -> None:
        """Fail a job for good without running it, ``note`` put before its last error (its
        attempts ran out in workers that died running it; see ``Worker._out_of_attempts``)."""
        now = self.clock()
        error = literal(note, Text) + func.coalesce(dj.c.last_error, "")

        def work(conn: Connection) -> None:
            conn.execute(update(dj).where(dj.c.id == job.id, dj.c.locked_by == job.locked_by).values(
                failed_at=now, locked_at=None, locked_by=None, updated_at=now, last_error=error))
            unique.release(conn, [job.id])
            if job.tracked:
                states.set_state(conn, [job.id], State.ERROR, now, last_error=note.rstrip(": "), finished_at=now)
        self.transaction(work)

    def destroy_failed(self, job: Job, note: str, error: str | None = None) -> str:
        """Delete a job that failed for good (``destroy_failed_jobs``) while its worker holds it;
        returns its last error, ``note`` then ``error`` (None: the one recorded, as ``give_up``).
        A tracked job is left in ``error`` with it: its state row is all that remains."""
        now = self.clock()

        def work(conn: Connection) -> str:
            recorded = error
            if recorded is None:
                recorded = conn.execute(select(dj.c.last_error).where(dj.c.id == job.id)).scalar() or ""
            conn.execute(delete(dj).where(dj.c.id == job.id, dj.c.locked_by == job.locked_by))
            unique.release(conn, [job.id])
            if job.tracked:
                states.set_state(conn, [job.id], State.ERROR, now, last_error=note + recorded, finished_at=now,
                                 delayed_job_id=None)
            return note + recorded
        return self.transaction(work)
