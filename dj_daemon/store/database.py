"""One database behind the store: its engine, transactions retried on deadlock, errors as one line.

Every verb of the store (``queue``, ``registry``, ``admin``, and the tracked and
cancelling verbs) runs through ``Database.transaction``: a short transaction
that is tried again on MySQL deadlocks and lock-wait timeouts, which InnoDB can
raise on any statement (every transaction of the store is safe to run again from
its start), and whose other failures become a one-line ``DatabaseError`` naming
the masked URL. Here too is what the store's connections do outside a verb: the
schema, the idle poll's connection and the enqueue path's kept one, disposal,
letting go of them in a forked child, and the dialect's listener.
"""
from __future__ import annotations

import random
import re
import time
from datetime import datetime
from types import ModuleType
from typing import Any, Callable, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from ..errors import DatabaseError
from ..job import utcnow
from ..schema import create_all, missing_columns, missing_indexes
from . import driver, mysql, sqlite

T = TypeVar("T")
#: Tries of one transaction on deadlock, lock-wait timeout or lost connection. Galera adds
#: certification conflicts, which come in streaks: two nodes' workers read the same head of
#: the queue until each node has applied the other's write sets. 8 tries, backing off up to
#: 1.3 s, left 0-2 transactions in 20,000 jobs to the worker's own retry (docs/scale-out.md);
#: more tries at a capped pause absorb them.
TX_ATTEMPTS = 12
TX_PAUSE_CAP = 0.32  # seconds, at most, between two tries (with jitter below it)
#: SQLite's, MySQL's and PostgreSQL's words for a table that is not there
MISSING_TABLE = re.compile(r"no such table|Table '[^']*' doesn't exist|relation \S+ does not exist")
#: Their words for a column that is not there: one a later version added (``schema.missing_columns``)
MISSING_COLUMN = re.compile(r"no such column|has no column named|Unknown column|column \S+ (of relation \S+ )?does not exist")


def describe(exc: BaseException, safe_url: str) -> str:
    """One line for a database error, naming the masked URL and the server's message."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    message = args[1] if len(args) > 1 and isinstance(args[0], int) else str(orig)
    line = str(message).splitlines()[0] if message else type(orig).__name__
    if MISSING_COLUMN.search(line):  # first: PostgreSQL's words for it name the relation too
        line += " (add the columns of this version with `delayed_job db init`)"
    elif MISSING_TABLE.search(line):
        line += " (create the tables with `delayed_job db init`)"
    return f"database error on {safe_url}: {line}"


def _retryable(exc: DBAPIError) -> bool:
    """Deadlock or lock-wait timeout (rolled back, safe to redo), or a connection found dead."""
    args = getattr(exc.orig, "args", ())
    return exc.connection_invalidated or (bool(args) and args[0] in mysql.RETRYABLE_CODES)


class Database:
    """The engine and its transactions, which every verb of the store runs in (see the module
    docstring); the ``Store`` is this with the verbs mixed in."""

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
                    time.sleep(random.uniform(0, min(0.01 * 2**attempt, TX_PAUSE_CAP)))
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
        return self._missing(missing_indexes)

    def missing_columns(self) -> list[str]:
        """``table.column`` names that ``create_schema`` would add to existing tables: until it
        does, the statements naming them fail."""
        return self._missing(missing_columns)

    def _missing(self, find: Callable[[Any], list[Any]]) -> list[str]:
        try:
            return [f"{item.table.name}.{item.name}" for item in find(self.engine)]
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

    def _close_poll(self) -> None:
        """Drop the idle poll's connection (``QueueVerbs.has_ready``); the next poll opens another."""
        if self._poll_conn is not None:
            try:
                self._poll_conn.invalidate()
            finally:
                self._poll_conn = None
