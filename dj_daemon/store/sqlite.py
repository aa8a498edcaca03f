"""SQLite: one writer at a time, so every transaction starts ``BEGIN IMMEDIATE``.

pysqlite's own transaction handling is switched off so that SQLAlchemy's
``begin`` event can issue ``BEGIN IMMEDIATE``: a reservation then holds the
write lock from its first SELECT, and two processes can never pick the same
row. WAL lets readers go on while a worker writes.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine

BUSY_TIMEOUT_MS = 30_000
#: How every transaction starts (pysqlite's own BEGIN is off; see the module docstring).
BEGIN = "BEGIN IMMEDIATE"


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
        conn.exec_driver_sql(BEGIN)


def supports_skip_locked(engine: Engine) -> bool:
    return False


def bulk_insert(dialect: Dialect) -> None:
    """No statement of its own for many rows: the driver's executemany serves."""
    return None
