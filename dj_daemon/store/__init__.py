"""The queue store: one face over every dialect.

Callers see ``insert``, ``reserve``, ``complete``, ``reschedule``, ``fail``,
``release_locks_of`` and the operators' ``get``/``jobs``/``retry``/``delete``/
``clear``. Each statement runs in a short transaction that is retried on
MySQL deadlocks and lock-wait timeouts, which InnoDB can raise on any
statement; every transaction here is safe to run again from its start.
"""
from __future__ import annotations

import functools
import random
import re
import time
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any, Callable, Collection, Iterable, NamedTuple, Sequence, TypeVar

from sqlalchemy import String, Text, cast, create_engine, delete, func, literal, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError

from ..config import Config, mask_url
from ..errors import DatabaseError, UnknownJobError
from ..job import Job, NewJob, utcnow
from ..schema import create_all, delayed_jobs as dj, missing_indexes, workers as wk
from ..tracking import Gate, State
from . import cancels, common, counting, driver, mysql, postgresql, sqlite, states, tracked, unique
from .common import Filters
from .counting import COUNT_CAP, Counts, Depths

__all__ = ["Store", "Filters", "Reserved", "open_store", "Counts", "Depths", "COUNT_CAP"]
T = TypeVar("T")
DIALECTS: dict[str, ModuleType] = {"sqlite": sqlite, "mysql": mysql, "mariadb": mysql, "postgresql": postgresql}
TX_ATTEMPTS = 8
#: SQLite's, MySQL's and PostgreSQL's words for a table that is not there
MISSING_TABLE = re.compile(r"no such table|Table '[^']*' doesn't exist|relation \S+ does not exist")


class Reserved(NamedTuple):
    """What one reservation got: jobs to run, and tracked jobs a closed gate parked instead."""

    jobs: list[Job]
    parked: list[tuple[Job, State]]


def open_store(config: Config, timeout: float | None = None) -> "Store":
    """A store on ``config.url``; a bad URL or missing driver is a one-line ``DatabaseError``.

    With ``timeout`` (seconds), no wait on the database lasts longer: connecting, a
    statement's answer, a lock another writer holds (each as the dialect can bound it,
    see its ``engine_options``), and no transaction is tried again once that long has
    passed since its first try. Without it, the drivers' own generous limits apply.
    """
    try:
        url = make_url(config.url)
        dialect = DIALECTS.get(url.get_backend_name())
        if dialect is None:
            raise DatabaseError(f"unsupported database {url.get_backend_name()!r} in {mask_url(config.url)}")
        engine = create_engine(url, **dialect.engine_options(timeout))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(f"cannot use database {mask_url(config.url)}: {exc}") from None
    dialect.prepare(engine, timeout)
    return Store(engine, dialect, config.safe_url, timeout=timeout)


def describe(exc: BaseException, safe_url: str) -> str:
    """One line for a database error, naming the masked URL and the server's message."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    message = args[1] if len(args) > 1 and isinstance(args[0], int) else str(orig)
    line = str(message).splitlines()[0] if message else type(orig).__name__
    if MISSING_TABLE.search(line):
        line += " (create the tables with `delayed_job db init`)"
    return f"database error on {safe_url}: {line}"


def _retryable(exc: DBAPIError) -> bool:
    """Deadlock or lock-wait timeout (rolled back, safe to redo), or a connection found dead."""
    args = getattr(exc.orig, "args", ())
    return exc.connection_invalidated or (bool(args) and args[0] in mysql.RETRYABLE_CODES)


def _delete_finished(conn: Connection, jobs: Sequence[Job], now: datetime) -> None:
    """Delete successful jobs still held by their worker; tracked ones become ``completed``."""
    if not jobs:
        return
    conn.execute(common.delete_finished_of(len(jobs)), common.by_ids([j.id for j in jobs], worker=jobs[0].locked_by))
    unique.release(conn, unique.keyed(jobs))
    states.set_state(conn, [j.id for j in jobs if j.strand is not None], State.COMPLETED, now, finished_at=now,
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


def _unlock_unstarted(conn: Connection, ids: list[int], worker: str, now: datetime) -> None:
    """Give back jobs ``worker`` holds but never started: no attempt counted; tracked ones are
    ``enqueued`` again."""
    states.set_state(conn, ids, State.ENQUEUED, now)
    common.unlock(conn, ids, worker, now)


class Store(states.TrackedVerbs, tracked.TrackedPages, cancels.CancelVerbs):
    """The work queue in one database; safe to use from one process at a time."""

    def __init__(self, engine: Engine, dialect: ModuleType, safe_url: str,
                 clock: Callable[[], datetime] = utcnow, timeout: float | None = None) -> None:
        self.engine = engine
        self.timeout = timeout  # see ``open_store``
        self.safe_url = safe_url
        self.clock = clock
        self._dialect = dialect
        self._skip_locked: bool | None = None
        self._poll_conn: Connection | None = None
        self._autocommit: bool = getattr(dialect, "AUTOCOMMIT", False)
        self._cursors = driver.Cursors(engine, autocommit=self._autocommit)
        self._due = dialect.due_scan()  # how the ready queries read due rows only

    # -- plumbing -----------------------------------------------------------
    def _error(self, exc: SQLAlchemyError) -> DatabaseError:
        """The one-line ``DatabaseError`` for ``exc``, marked permanent when no wait can fix it
        (the dialect's codes: a missing table or database, access denied)."""
        orig = getattr(exc, "orig", None) or exc
        return DatabaseError(describe(exc, self.safe_url), permanent=self._dialect.permanent(orig))

    def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction, again on deadlock; other failures become ``DatabaseError``."""
        return self._retrying(self._on_connection, work)

    def _on_connection(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return work(conn)

    def _autocommitted(self, work: Callable[[Connection], T]) -> T:
        """``work`` on a pooled connection in autocommit: each statement its own transaction,
        with no BEGIN or COMMIT sent."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return work(conn)

    def _retrying(self, run: Callable[[Callable[[Any], T]], T], work: Callable[[Any], T]) -> T:
        """``run(work)``, again on deadlock; other failures become ``DatabaseError``."""
        started = time.monotonic()
        for attempt in range(TX_ATTEMPTS):
            try:
                return run(work)
            except DBAPIError as exc:
                if attempt + 1 < TX_ATTEMPTS and _retryable(exc) and self._may_retry(started):
                    time.sleep(random.uniform(0, 0.01 * 2**attempt))
                    continue
                raise self._error(exc) from exc
            except SQLAlchemyError as exc:
                raise self._error(exc) from exc
        raise AssertionError("unreachable")

    def _read(self, read: Callable[[Connection], T]) -> T:
        """A reading transaction that a stored value sqlite3 cannot decode does not fail whole;
        in autocommit where the dialect asks (``AUTOCOMMIT``)."""
        if self._dialect is sqlite:
            return self.transaction(lambda conn: sqlite.reading_bad_text(conn, lambda: read(conn)))
        if self._autocommit:
            return self._retrying(self._autocommitted, read)
        return self.transaction(read)

    def _may_retry(self, started: float) -> bool:
        """Within ``timeout`` of the first try, if there is one: a statement that timed out
        (a lost connection too, to the driver) is not waited for twice."""
        return self.timeout is None or time.monotonic() - started < self.timeout

    def create_schema(self) -> None:
        """Create the tables and indexes that are missing (``delayed_job db init``), an index of an
        existing table too: on MariaDB an online build (docs/performance.md, "Stored rows"), on the others one that
        blocks writes to that table while it runs."""
        try:
            create_all(self.engine)
        except SQLAlchemyError as exc:
            raise self._error(exc) from exc

    def missing_indexes(self) -> list[str]:
        """``table.index`` names that ``create_schema`` would add to existing tables."""
        try:
            return [f"{index.table.name}.{index.name}" for index in missing_indexes(self.engine)]
        except SQLAlchemyError as exc:
            raise self._error(exc) from exc

    def dispose(self) -> None:
        """Close pooled connections (at exit)."""
        self._cursors.close()
        self.engine.dispose()
        self._close_poll()

    def forget_connections(self) -> None:
        """In a forked child: let go of the parent's connections without a word to the server.

        The pool is replaced (SQLAlchemy's ``dispose(close=False)`` for ``os.fork``), and
        the old pool, the poll's connection and the enqueue path's kept connection stay
        reachable (``driver.keep_unclosed``): each holds a socket the parent still uses,
        and a connection the garbage collector closed would end the parent's session.
        The child opens connections of its own on first use.
        """
        driver.keep_unclosed(self.engine.pool, self._poll_conn)
        self.engine.dispose(close=False)
        self._poll_conn = None
        self._cursors.forget()

    def listen(self) -> Any:
        """A connection of its own that hears inserts into this database's queue (``fileno()``,
        ``take()`` gives their due times, ``close()``), where the dialect has one (PostgreSQL's
        LISTEN/NOTIFY); None elsewhere. A failure to open one is a ``DatabaseError``."""
        listener = getattr(self._dialect, "Listener", None)
        if listener is None:
            return None
        try:
            return listener(self.engine)
        except SQLAlchemyError as exc:
            raise self._error(exc) from exc
        except self.engine.dialect.dbapi.Error as exc:
            raise DatabaseError(describe(exc, self.safe_url), permanent=self._dialect.permanent(exc)) from exc

    @property
    def skip_locked(self) -> bool:
        """Whether this server has ``SKIP LOCKED``, asked once."""
        if self._skip_locked is None:
            try:
                self._skip_locked = self._dialect.supports_skip_locked(self.engine)
            except OperationalError as exc:
                raise self._error(exc) from exc
        return self._skip_locked

    @functools.cached_property
    def _plain_insert(self) -> driver.PlainInsert:
        """Compiled on first use, once the dialect has met the server."""
        dialect = self.engine.dialect
        return driver.PlainInsert(dialect, self._dialect.BEGIN, self._dialect.bulk_insert(dialect))

    # -- the job's way --------------------------------------------------------
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
                _unlock_unstarted(conn, common.held_by(conn, worker), worker, now)
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
                self._poll_conn = create_engine(self.engine.url, **options).connect()
            return self.poll_ready(self._poll_conn, filters)
        except SQLAlchemyError as exc:
            self._close_poll()
            raise self._error(exc) from exc

    def poll_ready(self, conn: Connection, filters: Filters) -> bool:
        """The idle poll's statement in ``conn`` (the one the bench and tests/store measure)."""
        query = common.any_ready(filters, self._due.clause(conn))
        return conn.execute(query, common.params(filters, self.clock())).first() is not None

    def _close_poll(self) -> None:
        if self._poll_conn is not None:
            try:
                self._poll_conn.invalidate()
            finally:
                self._poll_conn = None

    def reschedule(self, job: Job, attempts: int, error: str, run_at: datetime | None) -> None:
        """Record a failed run: try again at ``run_at``, or fail for good when it is None."""
        now = self.clock()
        values = common.changes_on_failure(attempts, error, now, run_at=run_at)

        def work(conn: Connection) -> None:
            conn.execute(update(dj).where(dj.c.id == job.id, dj.c.locked_by == job.locked_by).values(**values))
            if run_at is None:
                unique.release(conn, [job.id])  # failed for good: its key is free (a rare path: by id)
            if job.strand is not None:
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
            if job.strand is not None:
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
            if job.strand is not None:
                states.set_state(conn, [job.id], State.ERROR, now, last_error=note + recorded, finished_at=now,
                                 delayed_job_id=None)
            return note + recorded
        return self.transaction(work)

    # -- worker heartbeats (written by the supervisor for its workers) ------------
    def register_worker(self, name: str, hostname: str, pid: int) -> None:
        """A fresh heartbeat row for a new worker (a stale row of a reused pid is replaced)."""
        now = self.clock()

        def work(conn: Connection) -> None:
            conn.execute(delete(wk).where(wk.c.name == name))
            conn.execute(wk.insert().values(name=name, hostname=hostname, pid=pid, started_at=now, last_seen=now))
        self.transaction(work)

    def beat(self, current_jobs: dict[str, int | None]) -> None:
        """Stamp ``last_seen`` of these workers, with the job each is running: one UPDATE per
        distinct job (idle workers share one)."""
        now = self.clock()
        by_job: dict[int | None, list[str]] = {}
        for name, job_id in current_jobs.items():
            by_job.setdefault(job_id, []).append(name)

        def work(conn: Connection) -> None:
            for job_id, names in by_job.items():
                conn.execute(update(wk).where(wk.c.name.in_(names)).values(last_seen=now, current_job_id=job_id))
        if current_jobs:
            self.transaction(work)

    def worker_gone(self, name: str, error: str, completed: Collection[int] | None = None) -> int:
        """A worker ended: settle the jobs it still held, drop its heartbeat; returns how many it held.

        ``completed`` are the jobs its journal lists as finished (see ``journal``): their rows,
        not yet deleted, go. A worker runs a batch in ``ORDER``, so of the rest the first was
        running, and gets an attempt counted and ``error`` recorded; the others were never
        started and are only unlocked. Jobs it was asked to stop (``cancels``) are removed as
        cancelled, whichever they were: a cancelled job is never run again. ``completed`` None
        means nothing is known (another host, a worker without a journal): every job it held
        counts as started. Every freed job keeps
        its ``run_at``, so its place in the queue: it runs before what was enqueued after it.
        """
        now = self.clock()

        def work(conn: Connection) -> int:
            conn.execute(delete(wk).where(wk.c.name == name))
            if completed:
                done = list(conn.execute(select(dj.c.id).where(dj.c.id.in_(completed), dj.c.locked_by == name)
                                         ).scalars())
                conn.execute(delete(dj).where(dj.c.id.in_(done)))
                unique.release(conn, done)
                states.set_state(conn, done, State.COMPLETED, now, finished_at=now, delayed_job_id=None)
            held = common.held_by(conn, name)
            count, held = len(held), cancels.settle_cancelled(conn, held, now)  # cancelled: gone, never retried
            cut, unstarted = (held, []) if completed is None else (held[:1], held[1:])
            states.set_state(conn, cut, State.ENQUEUED, now, last_error=error)
            _unlock_unstarted(conn, unstarted, name, now)
            if cut:
                # last_error first: MySQL evaluates SET left to right, with the values set so far
                attempt = literal(f"{error} (attempt ", Text) + cast(dj.c.attempts + 1, String) + ")"
                conn.execute(update(dj).where(dj.c.id.in_(cut), dj.c.locked_by == name).ordered_values(
                    (dj.c.last_error, attempt), (dj.c.attempts, dj.c.attempts + 1), (dj.c.locked_at, None),
                    (dj.c.locked_by, None), (dj.c.updated_at, now)))
            return count
        return self.transaction(work)

    def workers(self, hostname: str | None = None) -> list[dict[str, Any]]:
        """Heartbeat rows, of one host or of all."""
        query = select(*(common.leniently(column) for column in wk.c)).order_by(wk.c.hostname, wk.c.name)
        if hostname is not None:
            query = query.where(wk.c.hostname == hostname)
        return self._read(lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    def lockers(self, hostname: str) -> list[str]:
        """Names of this host's workers that hold jobs now, heartbeat row or not (a range of the
        ``locked_by`` index)."""
        query = select(dj.c.locked_by).where(dj.c.locked_by.startswith(f"{hostname}:", autoescape=True)).distinct()
        return self.transaction(lambda conn: list(conn.execute(query).scalars()))

    def silent_workers(self, timeout: float) -> list[str]:
        """Workers whose last heartbeat is older than ``timeout`` seconds (their host is gone)."""
        limit = self.clock() - timedelta(seconds=timeout)
        query = select(wk.c.name).where(wk.c.last_seen < limit)
        return self.transaction(lambda conn: list(conn.execute(query).scalars()))

    # -- the operators' verbs -------------------------------------------------
    def get(self, job_id: int) -> Job:
        query = select(*common.EVERY_COLUMN).where(dj.c.id == job_id)
        row = self._read(lambda conn: conn.execute(query).mappings().first())
        if row is None:
            raise UnknownJobError(f"no job with id {job_id}")
        return Job.from_row(row)

    def jobs(self, *, failed: bool | None = None, queue: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs in the queue, oldest first; ``failed`` narrows to failed or to not-failed ones."""
        query = select(*common.EVERY_COLUMN).order_by(dj.c.id).limit(limit)
        if failed is not None:
            query = query.where(dj.c.failed_at.is_not(None) if failed else dj.c.failed_at.is_(None))
        if queue is not None:
            query = query.where(dj.c.queue == queue)
        return self._read(lambda conn: [Job.from_row(r) for r in conn.execute(query).mappings()])

    def retry(self, job_id: int) -> Job:
        """Make a failed (or waiting) job run now, as delayed_job's ``retry``; attempts start over.
        A stray ``locked_at`` goes too: on SQLite, one that is no date would keep the job from
        ever being ready."""
        now = self.clock()
        self._change(job_id, update(dj).where(dj.c.locked_by.is_(None)).values(
            failed_at=None, attempts=0, run_at=now, locked_at=None, updated_at=now), State.ENQUEUED, finished_at=None)
        return self.get(job_id)

    def delete(self, job_id: int) -> None:
        """Remove a job that is not running (a tracked one is left in ``error``, saying so)."""
        self._change(job_id, delete(dj).where(dj.c.locked_by.is_(None)), State.ERROR,
                     last_error="deleted from the work queue by an operator", delayed_job_id=None)

    def _change(self, job_id: int, statement: Any, state: State, **values: Any) -> None:
        """Apply ``statement`` to one idle job and move its tracked state, or say why not."""
        def work(conn: Connection) -> None:
            states.set_state(conn, [job_id], state, self.clock(), **values)
            if conn.execute(statement.where(dj.c.id == job_id)).rowcount == 0:
                exists = conn.execute(select(dj.c.id).where(dj.c.id == job_id)).first()
                raise UnknownJobError(f"job {job_id} is running; try again when it is done"
                                      if exists else f"no job with id {job_id}")
        self.transaction(work)

    def clear(self, queue: str | None = None) -> int:
        """Delete every job not running (of ``queue`` if given); returns how many. Tracked ones
        are left in ``error``, saying so, as with ``delete``."""
        idle = [dj.c.locked_by.is_(None)] + ([dj.c.queue == queue] if queue is not None else [])

        def work(conn: Connection) -> int:
            ids = list(conn.execute(select(dj.c.id).where(*idle, dj.c.strand.is_not(None))).scalars())
            states.set_state(conn, ids, State.ERROR, self.clock(), delayed_job_id=None,
                             last_error="cleared from the work queue by an operator")
            return conn.execute(delete(dj).where(*idle)).rowcount
        return self.transaction(work)

    def counts(self, cap: int = counting.COUNT_CAP) -> counting.Counts:
        """How many jobs are waiting, running and failed, each counted up to ``cap`` (past it, a
        lower bound named in ``at_least``): a few index ranges, however many rows are stored."""
        listed = isinstance(self._due, common.ListedPriorities)
        return self.transaction(lambda conn: counting.counts(conn, listed, cap))

    def queue_depths(self, cap: int = counting.COUNT_CAP) -> counting.Depths:
        """Jobs due and waiting by queue (``""`` for none), with the oldest one's ``run_at`` (None
        when that is no valid date, a defective row failed at its turn), for STATUS=, the metrics
        and the web page. It reads the due rows only (``common.Due``), and no more than ``cap`` + 1
        of them, in the reservation's order: past that, ``at_least`` (see ``counting.Depths``)."""
        return self._read(lambda conn: counting.queue_depths(conn, self._due.clause(conn), self.clock(), cap))
