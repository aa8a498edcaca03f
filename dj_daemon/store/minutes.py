"""The per-minute counts table (``delayed_job_minutes``): one row per host per minute, for the charts.

Dialect-neutral: a host's row is written by that host's supervisor only, so
an UPDATE that finds no row, then an INSERT, is an upsert without a race.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from ..schema import minutes as mn


def record(store: Any, host: str, minute: datetime, done: int, failed: int, depth: int | None) -> None:
    """Add ``done`` and ``failed`` to ``host``'s row of ``minute`` (made if missing), and set its depth."""
    def work(conn: Connection) -> None:
        changed = conn.execute(update(mn).where(mn.c.hostname == host, mn.c.minute == minute).values(
            done=mn.c.done + done, failed=mn.c.failed + failed, depth=depth)).rowcount
        if not changed:
            conn.execute(mn.insert().values(hostname=host, minute=minute, done=done, failed=failed, depth=depth))
    store.transaction(work)


def prune(store: Any, before: datetime) -> int:
    """Delete every host's rows older than ``before``; returns how many."""
    return store.transaction(lambda conn: conn.execute(delete(mn).where(mn.c.minute < before)).rowcount)


def since(store: Any, start: datetime) -> list[dict[str, Any]]:
    """Every host's rows from ``start`` on, oldest first (a range of the minute index)."""
    query = select(mn).where(mn.c.minute >= start).order_by(mn.c.minute, mn.c.hostname)
    return store.transaction(lambda conn: [dict(row) for row in conn.execute(query).mappings()])
