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
    """
    busy_ms = busy_ms or BUSY_TIMEOUT_MS
    conn.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + busy_ms / 1000
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
        conn.exec_driver_sql(f"PRAGMA busy_timeout={busy_ms}")


def supports_skip_locked(engine: Engine) -> bool:
    return False


def bulk_insert(dialect: Dialect) -> None:
    """No statement of its own for many rows: the driver's executemany serves."""
    return None
