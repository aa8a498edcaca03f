"""The operators' pages of tracked jobs, one job's detail, retry-now, and pruning of completed ones.

Every read here is paged on an index, newest first, and counts nothing: a
page costs the same with a million rows as with ten. Each tracked row comes
with its live work-queue row (attempts, last error, run_at, lock) through
one outer join, never a query per row.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TypeVar

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.engine import Connection

from ..errors import UnknownJobError
from ..schema import delayed_jobs as dj, tracked_jobs as tj
from ..tracking import State
from . import history
from .common import leniently
from .states import LIVE

T = TypeVar("T")
#: What a page shows of the work-queue row, named apart from the tracked row's own columns.
QUEUE_COLUMNS = (dj.c.attempts.label("attempts"), dj.c.last_error.label("queue_error"),
                 leniently(dj.c.run_at), leniently(dj.c.locked_at), dj.c.locked_by, leniently(dj.c.failed_at))
#: A page shows every column of the tracked row but its payload (the job's arguments, maybe large).
PAGE_COLUMNS = tuple(leniently(c) for c in tj.c if c.name != "payload") + QUEUE_COLUMNS
WITH_QUEUE_ROW = tj.outerjoin(dj, (dj.c.id == tj.c.delayed_job_id) & LIVE)
#: Past this many job classes, an identifier is looked for without them (see ``_classes``).
MANY_CLASSES = 100
#: Completed rows deleted per statement by ``prune_completed``.
PRUNE_BATCH = 1000


class TrackedPages:
    """Mixed into the store face: reads and admin verbs that ``long_jobs`` and the web page share."""

    transaction: Callable[..., Any]
    clock: Callable[[], datetime]

    def tracked_page(self, *, state: str | None = None, identifier: str | None = None,
                     job_class: str | None = None, host: str | None = None, before: int | None = None,
                     limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` tracked rows with ids below ``before``, newest first, each with its queue row.

        A walk down the primary key, or down the state index (whose entries end
        with the id) when ``state`` is given; an ``identifier`` is found through
        the (job_class, identifier) index, for each class (see ``_classes``).
        """
        def read(conn: Connection) -> list[dict[str, Any]]:
            query = select(*PAGE_COLUMNS).select_from(WITH_QUEUE_ROW).order_by(tj.c.id.desc()).limit(limit)
            query = _filtered(query, state=state, host=host, before=before)
            if identifier is not None:
                classes = [job_class] if job_class is not None else _classes(conn)
                query = query.where(tj.c.identifier == identifier)
                if classes is not None:
                    query = query.where(tj.c.job_class.in_(classes))
            elif job_class is not None:
                query = query.where(tj.c.job_class == job_class)
            return [dict(row) for row in conn.execute(query).mappings()]
        return self.transaction(read)

    def tracked_detail(self, state_id: int) -> dict[str, Any]:
        """One tracked row (payload too) with its live queue row's columns and its history."""
        def read(conn: Connection) -> dict[str, Any]:
            query = select(*map(leniently, tj.c), *QUEUE_COLUMNS, dj.c.id.label("queue_id")).select_from(
                WITH_QUEUE_ROW).where(tj.c.id == state_id)
            row = conn.execute(query).mappings().first()
            if row is None:
                raise UnknownJobError(f"no tracked job with id {state_id}")
            return {**row, "history": history.of(conn, state_id)}
        return self.transaction(read)

    def retry_tracked_now(self, state_id: int, host: str) -> int | None:
        """Make a waiting tracked job (a retrying one, say) due now: its queue row's ``run_at``
        becomes now, attempts kept. Returns its queue id; None when it is not waiting (running,
        parked, in error, or its row locked or failed meanwhile)."""
        now = self.clock()

        def work(conn: Connection) -> int | None:
            row = conn.execute(select(tj.c.delayed_job_id).where(
                tj.c.id == state_id, tj.c.state == State.ENQUEUED.value)).first()
            if row is None or row[0] is None or not conn.execute(update(dj).where(
                    dj.c.id == row[0], dj.c.locked_by.is_(None), dj.c.failed_at.is_(None)).values(
                    run_at=now, locked_at=None, updated_at=now)).rowcount:
                return None
            history.record(conn, state_id, State.ENQUEUED, now, host, "retry now, by an operator")
            return int(row[0])
        return self.transaction(work)

    def prune_completed(self, finished_before: datetime, after: int = 0,
                        limit: int = PRUNE_BATCH) -> tuple[int, int | None]:
        """Delete completed tracked rows (and their history) finished before ``finished_before``,
        among the next ``limit`` completed rows with ids above ``after``, in one short transaction.

        Returns how many went, and the id to go on ``after``, or None when no later completed row
        can be old enough: ids grow with ``created_at``, and a row created since
        ``finished_before`` finished since too. The walk follows the state index (its entries end
        with the id), so each call reads at most ``limit`` rows, whatever the table holds.
        """
        def work(conn: Connection) -> tuple[int, int | None]:
            rows = conn.execute(select(tj.c.id, leniently(tj.c.finished_at), leniently(tj.c.created_at)).where(
                tj.c.state == State.COMPLETED.value, tj.c.id > after).order_by(tj.c.id).limit(limit)).all()
            old = [r.id for r in rows if _before(r.finished_at, finished_before)]
            pruned = 0
            if old:  # another host's daemon may prune the same rows: count only those deleted here
                history.forget(conn, old)
                pruned = conn.execute(delete(tj).where(tj.c.id.in_(old), tj.c.state == State.COMPLETED.value)).rowcount
            more = len(rows) == limit and _before(rows[-1].created_at, finished_before)
            return pruned, rows[-1].id if more else None
        return self.transaction(work)


def _before(value: Any, limit: datetime) -> bool:
    """Whether a stored time is before ``limit``; a value that is no time (a hand-written row's) is not."""
    return isinstance(value, datetime) and value < limit


def _filtered(query: Select, **values: Any) -> Select:
    """``query`` narrowed to a state, a host, and ids below ``before``, for those given."""
    if values["state"] is not None:
        query = query.where(tj.c.state == values["state"])
    if values["host"] is not None:
        query = query.where(tj.c.hostname == values["host"])
    if values["before"] is not None:
        query = query.where(tj.c.id < values["before"])
    return query


def _classes(conn: Connection) -> list[str] | None:
    """Every job class, one index seek each (a loose index scan any dialect runs), so that an
    identifier is looked for on the (job_class, identifier) index rather than down the whole
    table; None when there are more than ``MANY_CLASSES``."""
    found: list[str] = []
    while len(found) <= MANY_CLASSES:
        query = select(func.min(tj.c.job_class))
        if found:
            query = query.where(tj.c.job_class > found[-1])
        following = conn.execute(query).scalar()
        if following is None:
            return found
        found.append(following)
    return None
