"""SQLite: one writer at a time, so every transaction starts ``BEGIN IMMEDIATE``.

pysqlite's own transaction handling is switched off so that SQLAlchemy's
``begin`` event can issue ``BEGIN IMMEDIATE`` (``begin_immediate``): a
reservation then holds the write lock from its first SELECT, and two
processes can never pick the same row. WAL lets readers go on while a worker
writes.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from . import common

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000
#: sqlite3's error for stored text that is not UTF-8: it fails the whole fetch
UNDECODABLE = "Could not decode to UTF-8"
#: How every transaction starts (pysqlite's own BEGIN is off; see the module docstring).
BEGIN = "BEGIN IMMEDIATE"
#: No such table; a file that cannot be opened (its folder missing or not writable): no wait
#: fixes these (``Store._error``). sqlite3 gives them no code of their own.
PERMANENT_MESSAGES = ("no such table", "unable to open database file")


def engine_options(timeout: float | None = None) -> dict[str, Any]:
    """``timeout`` (the supervisor's) replaces ``BUSY_TIMEOUT_MS``: see ``prepare``."""
    return {"connect_args": {"timeout": timeout or BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}}


def prepare(engine: Engine, timeout: float | None = None) -> None:
    """Install the connect and begin hooks described in the module docstring; every wait for
    another writer is bounded by ``timeout`` if given, else by ``BUSY_TIMEOUT_MS``."""
    busy_ms = round(timeout * 1000) if timeout else None

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms or BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        begin_immediate(conn, busy_ms)


def begin_immediate(conn: Any, busy_ms: int | None = None) -> None:
    """``BEGIN IMMEDIATE``, waiting for another writer in short steps (0.1 ms, doubling to 2 ms)
    up to ``busy_ms`` (``BUSY_TIMEOUT_MS`` if None), then that busy timeout back for the
    transaction's statements.

    SQLite's own busy handler sleeps 1 ms, then 2, 5, 10... while a reservation
    holds the lock for well under a millisecond, so two workers spent most of
    their waits asleep after the lock was free: -n 2 drained no faster than
    -n 1. Waiting here made it 17-30% faster (docs/performance.md).

    Its statements go to sqlite3 itself: through ``exec_driver_sql`` these three
    cost 75 µs against 5 here, once a transaction (1.5 µs a job of a reservation
    of 50). Its failure comes out as SQLAlchemy's ``OperationalError``, as from
    any statement.
    """
    busy_ms = busy_ms or BUSY_TIMEOUT_MS
    raw, sqlite3 = conn.connection.dbapi_connection, conn.dialect.loaded_dbapi
    try:
        raw.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + busy_ms / 1000
            pause = 0.0001
            while True:
                try:
                    raw.execute(BEGIN)
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        finally:
            raw.execute(f"PRAGMA busy_timeout={busy_ms}")
    except sqlite3.Error as exc:
        raise DBAPIError.instance(BEGIN, None, exc, sqlite3.Error, dialect=conn.dialect) from exc


def permanent(error: BaseException) -> bool:
    """Whether the driver's ``error`` is one that waiting cannot fix."""
    return any(words in str(error) for words in PERMANENT_MESSAGES)


def supports_skip_locked(engine: Engine) -> bool:
    return False


def bulk_insert(dialect: Dialect) -> None:
    """No statement of its own for many rows: the driver's executemany serves."""
    return None


def missing_file(url: str) -> str | None:
    """The file a SQLite ``url`` names when it does not exist, else None (another database, or
    memory). Connecting would create it empty, so a check that promises to change nothing asks first."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return None
    if parsed.query.get("uri") and database.startswith("file:"):
        database = urlsplit(database).path
    return None if os.path.lexists(database) else database


def text_or_bytes(data: bytes) -> str | bytes:
    """Stored text decoded, or left as bytes when it is not UTF-8 (``Job.checked`` names it)."""
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError:
        return data


def reading_bad_text(conn: Connection, read: Callable[[], T]) -> T:
    """``read()`` in ``conn``'s transaction; if a row holds text that is not UTF-8, ``read()``
    again with such text as bytes. Not always so: a Python decoder per text value doubles
    sqlite3's cost of fetching a row."""
    try:
        return read()
    except OperationalError as exc:
        if UNDECODABLE not in str(exc.orig):
            raise
    raw: Any = conn.connection.dbapi_connection
    raw.text_factory = text_or_bytes
    try:
        return read()
    finally:
        raw.text_factory = str


def due_scan() -> common.Due:
    """The stored priorities ``IN`` a recursive CTE: one range per value, in order, whether or
    not ``ANALYZE`` has run (without its statistics, other forms walked every row)."""
    return common.StoredPriorities()
