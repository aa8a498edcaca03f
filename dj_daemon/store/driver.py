"""The enqueue path: plain job rows INSERTed on the driver's own cursor.

An enqueue outside the caller's transaction is one INSERT and one commit.
Through a SQLAlchemy ``Connection`` that cost 110-160 µs of CPU on this
project's machine on top of the driver's own 60 µs (sqlite3) to 110 µs
(PyMySQL), measured: checkout events, BEGIN through an event (SQLite), the
compiled-cache lookup, parameter processing and result set-up, then COMMIT.
Here SQLAlchemy still writes the statement, once per store, for the engine's
dialect (its SQL text, parameter order and type processors), and each
enqueue runs it on a DB-API connection from the pool (kept between
enqueues: see ``Cursors``): execute, commit. Driver errors come out as
SQLAlchemy's ``DBAPIError``, as from a ``Connection``, so the store retries
and reports both paths alike.

Tracked jobs (two rows) and enqueues inside a caller's transaction still go
through the ``Connection``.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Sequence, TypeVar

from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from ..schema import delayed_jobs as dj
from .common import INSERT_JOB
from .prepared import Prepared

T = TypeVar("T")
#: In a forked child: the parent's connection objects, reachable until the child exits (``keep_unclosed``).
_INHERITED: list[object] = []
#: The columns ``NewJob.params`` gives (its ``now`` is not a column).
COLUMNS = ("handler", "queue", "priority", "run_at", "attempts", "strand", "strand_limit")


class PlainInsert:
    """``common.INSERT_JOB`` compiled for one dialect, run on a DB-API cursor.

    ``begin`` is the statement that opens a transaction where the driver does
    not (SQLite in autocommit mode); one row needs none there, as a single
    statement is its own transaction. ``bulk``, where the dialect has one,
    inserts many rows in place of the driver's executemany.
    """

    def __init__(self, dialect: Dialect, begin: str | None,
                 bulk: Callable[[Any, Sequence[dict[str, Any]]], None] | None = None) -> None:
        self.begin, self.bulk = begin, bulk
        # The id as SQLAlchemy would get it: the cursor's lastrowid where the driver has one, else RETURNING.
        self.returning = not dialect.postfetch_lastrowid
        self.one = Prepared(INSERT_JOB.returning(dj.c.id) if self.returning else INSERT_JOB, dialect, COLUMNS)
        self.many = Prepared(INSERT_JOB, dialect, COLUMNS)

    def run(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert ``rows``; the new id when there is one row (none for many, as ``Store.insert``)."""
        if len(rows) == 1:
            cursor.execute(self.one.sql, self.one.params(rows[0]))
            return [cursor.fetchone()[0] if self.returning else cursor.lastrowid]
        if self.begin:
            cursor.execute(self.begin)
        if self.bulk is not None:
            self.bulk(cursor, rows)
        else:
            cursor.executemany(self.many.sql, [self.many.params(row) for row in rows])
        return []


class Cursors:
    """Transactions on a DB-API cursor: ``run(work)`` runs ``work(cursor)``, then commits; on any
    error it rolls back, or invalidates the connection when the dialect says it is gone.

    One pooled connection is kept checked out between runs (a checkout and checkin cost a
    seventh of a SQLite enqueue, measured), lent to one thread at a time; a thread that finds
    it lent, or a forked child, checks one out of the pool as before. It goes back to the pool
    ``KEEP`` seconds after its checkout, so that the pool's recycling still applies.

    ``autocommit`` (psycopg, which sends BEGIN as a round trip of its own before the first
    statement, and COMMIT as another): while lent here, a connection is in autocommit, so a
    single INSERT is one round trip and its own transaction; many rows still go in one, opened
    by ``PlainInsert.begin``. It leaves in the mode it came in.
    """

    KEEP = 10.0

    def __init__(self, engine: Engine, autocommit: bool = False) -> None:
        self.engine = engine
        self.autocommit = autocommit
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._kept: PoolProxiedConnection | None = None
        self._kept_since = 0.0

    def run(self, work: Callable[[Any], T]) -> T:
        dialect = self.engine.dialect
        error = dialect.loaded_dbapi.Error
        raw: PoolProxiedConnection | None = None
        usable = False
        try:
            raw = self._take()
            if self.autocommit and not raw.driver_connection.autocommit:
                raw.driver_connection.autocommit = True  # idle: the pool lends none in a transaction
            cursor = raw.cursor()
            result = work(cursor)
            cursor.close()
            raw.commit()
            usable = True
            return result
        except error as exc:
            gone = bool(dialect.is_disconnect(exc, raw.dbapi_connection if raw else None, None))
            usable = _abandon(raw, gone, error)
            raise DBAPIError.instance(None, None, exc, error, connection_invalidated=gone, dialect=dialect) from exc
        except BaseException:
            usable = _abandon(raw, False, error)
            raise
        finally:
            if raw is not None:
                self._give_back(raw, usable)

    def _take(self) -> PoolProxiedConnection:
        if self._pid != os.getpid() or not self._lock.acquire(blocking=False):
            return self.engine.raw_connection()
        try:
            if self._kept is not None and time.monotonic() - self._kept_since > self.KEEP:
                self._return_kept()
            if self._kept is None:
                self._kept = self.engine.raw_connection()
                self._kept_since = time.monotonic()
            return self._kept
        except BaseException:
            self._lock.release()
            raise

    def _checkin(self, raw: PoolProxiedConnection) -> None:
        """Back to the pool, in the mode the pool's other users expect."""
        if self.autocommit and raw.dbapi_connection is not None:
            try:
                raw.driver_connection.autocommit = False
            except self.engine.dialect.loaded_dbapi.Error:
                raw.invalidate()  # a connection that cannot say: never lent again
        raw.close()

    def _give_back(self, raw: PoolProxiedConnection, usable: bool) -> None:
        if raw is not self._kept:
            self._checkin(raw)
            return
        if not usable:
            self._kept = None
            self._checkin(raw)
        self._lock.release()

    def close(self) -> None:
        """Return the kept connection to the pool (before the pool is disposed of)."""
        if self._pid != os.getpid():
            self.forget()
            return
        with self._lock:
            self._return_kept()

    def _return_kept(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            self._checkin(kept)

    def forget(self) -> None:
        """In a forked child: let go of the kept connection unclosed, as its socket is the parent's."""
        keep_unclosed(self._kept)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._kept = None


def keep_unclosed(*inherited: object) -> None:
    """In a forked child: keep the parent's connection objects reachable for the child's whole life.

    Dropping one would let the garbage collector close it: SQLAlchemy's finalizer of a
    checked-out connection closes the DB-API connection, which then says goodbye to the
    server (PyMySQL's COM_QUIT, psycopg's Terminate) on the socket the parent still uses,
    and the parent's next statement fails with "Lost connection". Kept here, they are
    never touched again; the child leaves with ``os._exit``, which runs no finalizer.
    """
    _INHERITED.extend(item for item in inherited if item is not None)


def _abandon(raw: PoolProxiedConnection | None, gone: bool, error: type[Exception]) -> bool:
    """Never leave a connection inside a transaction; True if it may be used again."""
    if raw is None:
        return False
    if not gone:
        try:
            raw.rollback()
            return True
        except error:
            pass
    raw.invalidate()
    return False
