"""The per-minute counts table (``delayed_job_minutes``): one row per host per minute, for the charts.

A minute is stored as its number since the Unix epoch (UTC): an integer,
which the charts' query groups into buckets with one division on every
dialect, and which a driver reads far faster than a date (a day of rows is
read for every overview). A host's row is written by that host's supervisor
only, so an UPDATE that finds no row, then an INSERT, is an upsert without
a race.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from ..schema import minutes as mn

EPOCH = datetime(1970, 1, 1)
MINUTE = timedelta(minutes=1)


def number(moment: datetime) -> int:
    """The minute ``moment`` (naive UTC) falls in, as stored."""
    return (moment - EPOCH) // MINUTE


def record(store: Any, host: str, minute: datetime, done: int, failed: int, depth: int | None) -> None:
    """Add ``done`` and ``failed`` to ``host``'s row of ``minute`` (made if missing), and set its depth."""
    key = number(minute)

    def work(conn: Connection) -> None:
        changed = conn.execute(update(mn).where(mn.c.hostname == host, mn.c.minute == key).values(
            done=mn.c.done + done, failed=mn.c.failed + failed, depth=depth)).rowcount
        if not changed:
            conn.execute(mn.insert().values(hostname=host, minute=key, done=done, failed=failed, depth=depth))
    store.transaction(work)


def prune(store: Any, before: datetime) -> int:
    """Delete every host's rows older than ``before``; returns how many."""
    return store.transaction(lambda conn: conn.execute(delete(mn).where(mn.c.minute < number(before))).rowcount)


def since(store: Any, start: datetime, bucket: int = 1) -> list[tuple[datetime, float, float, float | None]]:
    """From ``start`` on, oldest first, per ``bucket`` minutes: the time the bucket starts, jobs done and
    failed per minute, and the queue depth (every host's added up; averaged over the bucket's minutes
    that have a row). One range of the minute index, grouped in the database: a few hundred rows."""
    slot = mn.c.minute // bucket
    measured = func.count(func.distinct(mn.c.minute))
    query = (select(slot, func.sum(mn.c.done), func.sum(mn.c.failed), func.sum(mn.c.depth), measured,
                    func.count(mn.c.depth))
             .where(mn.c.minute >= number(start)).group_by(slot).order_by(slot))
    rows = store.transaction(lambda conn: conn.execute(query).all())
    return [(EPOCH + int(s) * bucket * MINUTE, float(done) / bucket, float(failed) / bucket,
             None if not with_depth else float(depth) / minutes) for s, done, failed, depth, minutes, with_depth in rows]
