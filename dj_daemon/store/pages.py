"""The web page's reads that the operators' verbs do not already make: bounded counts and
the work queue a page at a time.

Each one reads a range of an index and stops early, so that a page costs
the same with a thousand rows or a million: counts stop at ``cap`` (shown
as "cap+"), and pages go by id, newest first, from a ``before`` cursor.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, literal, select
from sqlalchemy.sql import ColumnElement

from ..job import Job
from ..schema import delayed_jobs as dj, tracked_jobs as tj
from ..tracking import State
from .common import EVERY_COLUMN

#: What each list of the work queue holds. Waiting and failed rows are read newest first along
#: the primary key; running rows through the ``locked_by`` index.
QUEUE_KINDS: dict[str, ColumnElement[bool]] = {
    "waiting": and_(dj.c.failed_at.is_(None), dj.c.locked_by.is_(None)),
    "running": and_(dj.c.locked_by.is_not(None), dj.c.failed_at.is_(None)),
    "failed": dj.c.failed_at.is_not(None),
}


def _bounded(where: ColumnElement[bool], table: Any, cap: int) -> Any:
    """How many rows match, counting no further than ``cap + 1``."""
    found = select(literal(1).label("one")).select_from(table).where(where).limit(cap + 1).subquery()
    return select(func.count()).select_from(found).scalar_subquery()


def bounded_counts(store: Any, cap: int) -> dict[str, dict[str, int]]:
    """Tracked jobs per state (the ``state`` index) and running queue rows (the ``locked_by``
    index), each counted up to ``cap + 1``: one statement, a few index ranges."""
    states = [s.value for s in State]
    columns = [_bounded(tj.c.state == s, tj, cap).label(s) for s in states]
    columns.append(_bounded(dj.c.locked_by.is_not(None), dj, cap).label("running"))
    row = store.transaction(lambda conn: conn.execute(select(*columns)).one())
    return {"states": {s: row[i] for i, s in enumerate(states)}, "queue": {"running": row[-1]}}


def queue_page(store: Any, kind: str, before: int | None, limit: int) -> list[Job]:
    """Up to ``limit`` work-queue rows of ``kind``, newest first, below id ``before``."""
    query = select(*EVERY_COLUMN).where(QUEUE_KINDS[kind]).order_by(dj.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(dj.c.id < before)
    return store._read(lambda conn: [Job.from_row(r) for r in conn.execute(query).mappings()])
