"""SQLite: one writer at a time, so every transaction starts ``BEGIN IMMEDIATE``.

pysqlite's own transaction handling is switched off so that SQLAlchemy's
``begin`` event can issue ``BEGIN IMMEDIATE`` (``begin_immediate``): a
reservation then holds the write lock from its first SELECT, and two
processes can never pick the same row. WAL lets readers go on while a worker
writes.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import OperationalError

BUSY_TIMEOUT_MS = 30_000
#: How every transaction starts (pysqlite's own BEGIN is off; see the module docstring).
BEGIN = "BEGIN IMMEDIATE"
#: No such table; a file that cannot be opened (its folder missing or not writable): no wait
#: fixes these (``Store._error``). sqlite3 gives them no code of their own.
PERMANENT_MESSAGES = ("no such table", "unable to open database file")


def engine_options() -> dict[str, Any]:
    return {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}}


def prepare(engine: Engine) -> None:
    """Install the connect and begin hooks described in the module docstring."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        begin_immediate(conn)


def begin_immediate(conn: Any) -> None:
    """``BEGIN IMMEDIATE``, waiting for another writer in short steps (0.1 ms, doubling to 2 ms)
    up to ``BUSY_TIMEOUT_MS``, then the busy timeout back for the transaction's statements.

    SQLite's own busy handler sleeps 1 ms, then 2, 5, 10... while a reservation
    holds the lock for well under a millisecond, so two workers spent most of
    their waits asleep after the lock was free: -n 2 drained no faster than
    -n 1. Waiting here made it 17-30% faster (docs/performance.md).
    """
    conn.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.0001
        while True:
            try:
                conn.exec_driver_sql(BEGIN)
                return
            except OperationalError as exc:
                if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.002)
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def permanent(error: BaseException) -> bool:
    """Whether the driver's ``error`` is one that waiting cannot fix."""
    return any(words in str(error) for words in PERMANENT_MESSAGES)


def supports_skip_locked(engine: Engine) -> bool:
    return False


def bulk_insert(dialect: Dialect) -> None:
    """No statement of its own for many rows: the driver's executemany serves."""
    return None
