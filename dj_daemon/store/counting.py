"""Queue counts that cost the same at a thousand stored rows or a million: exact up to a cap,
then "at least" that many, saying so.

``Store.counts`` (waiting, running, failed: ``long_jobs status``, ``delayed_job check``, the
web page) and ``Store.queue_depths`` (due and waiting by queue: STATUS=, the metrics, the web
page) read index ranges with a ``LIMIT`` of the cap and one more, so a count stops there:
- not failed: ``ix_delayed_jobs_due`` in its order (SQLite and PostgreSQL: its partial index
  holds exactly these rows; PostgreSQL reads a table of a few times the cap whole instead, as
  cheap; MariaDB: one range ``priority = p AND failed_at IS NULL`` per stored priority, listed
  in the same transaction by a loose index scan, index-only);
- failed: ``ix_delayed_jobs_failed`` (a partial index, written only when a job fails for good)
  on SQLite and PostgreSQL; on MariaDB, which has no partial index, the ranges ``priority = p
  AND failed_at IS NOT NULL`` of ``ix_delayed_jobs_due``;
- running: the ``locked_by`` index; waiting is not failed minus running;
- due by queue: the reservation's own bounded ranges (``common.Due``), in its order.
A count that reached the cap is in ``at_least``: the value is a lower bound, shown as
"10,000+" wherever it is printed. docs/performance.md ("Queue counts") has the rows read.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import Integer, and_, bindparam, func, literal, or_, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..schema import delayed_jobs as dj
from .common import DISTINCT_PRIORITIES, ORDER, Bound, LenientTime

#: Rows counted at most per count; past it, a count is a lower bound (``at_least``).
COUNT_CAP = 10_000
_LIMIT = bindparam("limit", type_=Integer)


class Counts(dict[str, int]):
    """Jobs waiting, running and failed; a name in ``at_least`` reached ``cap``: its value is
    a lower bound (the mapping compares as the three numbers alone)."""

    def __init__(self, waiting: int, running: int, failed: int, at_least: Iterable[str] = (),
                 cap: int = COUNT_CAP) -> None:
        super().__init__(waiting=waiting, running=running, failed=failed)
        self.at_least = frozenset(at_least)
        self.cap = cap

    def shown(self, name: str) -> str:
        """``1,234``, or ``10,000+`` for a lower bound."""
        return f"{self[name]:,}{'+' if name in self.at_least else ''}"


class Depths(dict[str, tuple[int, "datetime | None"]]):
    """Jobs due and waiting by queue, with the oldest one's ``run_at``. ``at_least``: more were
    due than the cap; only the first ``cap`` in the reservation's order were read, so each count
    is a lower bound and each oldest time the oldest of those read."""

    def __init__(self, depths: dict[str, tuple[int, datetime | None]], at_least: bool = False,
                 cap: int = COUNT_CAP) -> None:
        super().__init__(depths)
        self.at_least = at_least
        self.cap = cap

    def total(self) -> int:
        return sum(count for count, _ in self.values())

    def shown_total(self) -> str:
        """``12``, or ``10000+`` (more than the cap) for a lower bound (STATUS=)."""
        return f"{self.cap}+" if self.at_least else str(self.total())


def _capped(where: ColumnElement[bool], *order: Any) -> Any:
    """How many rows match, counting no further than ``:limit``."""
    found = select(literal(1).label("one")).where(where).order_by(*order).limit(_LIMIT).subquery()
    return select(func.count()).select_from(found)


def _listed(conn: Connection, failed: bool) -> ColumnElement[bool] | None:
    """MariaDB: one range of ``ix_delayed_jobs_due`` per stored priority (None: no row at all)."""
    priorities = list(conn.execute(DISTINCT_PRIORITIES).scalars())
    state = dj.c.failed_at.is_not(None) if failed else dj.c.failed_at.is_(None)
    return or_(*(and_(dj.c.priority == p, state) for p in priorities)) if priorities else None


#: MariaDB's failed ranges are read in the index's order: without it, from about 100k stored rows
#: on, its optimizer walked ``ix_delayed_jobs_due`` from its start instead, past every row of a
#: priority that is not failed before reaching its failed ones (at 1M for later and 1M failed, the
#: failed count read 1M index entries: 45 ms against 2 ms, docs/performance.md). The not-failed
#: ranges come first in each priority and are read as ranges without it; with it, it sorted them.
FAILED_ORDER = (dj.c.priority, dj.c.failed_at)
RUNNING = _capped(and_(dj.c.locked_by.is_not(None), dj.c.failed_at.is_(None)), dj.c.locked_by)
NOT_FAILED = _capped(dj.c.failed_at.is_(None), *ORDER)
#: ``ix_delayed_jobs_failed`` is ordered by ``failed_at``: the order pins the plan to it
FAILED = _capped(dj.c.failed_at.is_not(None), dj.c.failed_at)


def counts(conn: Connection, listed: bool, cap: int = COUNT_CAP) -> Counts:
    """Waiting, running and failed in ``conn``; ``listed``: by MariaDB's listed ranges."""
    running = conn.execute(RUNNING, {"limit": cap + 1}).scalar_one()
    not_failed_limit = cap + min(running, cap) + 1
    if listed:
        alive, dead = _listed(conn, failed=False), _listed(conn, failed=True)
        not_failed = 0 if alive is None else conn.execute(_capped(alive), {"limit": not_failed_limit}).scalar_one()
        failed = 0 if dead is None else conn.execute(_capped(dead, *FAILED_ORDER), {"limit": cap + 1}).scalar_one()
    else:
        not_failed = conn.execute(NOT_FAILED, {"limit": not_failed_limit}).scalar_one()
        failed = conn.execute(FAILED, {"limit": cap + 1}).scalar_one()
    waiting = not_failed - min(running, cap)
    totals = {"waiting": min(waiting, cap), "running": min(running, cap), "failed": min(failed, cap)}
    over = [name for name, n in (("waiting", waiting), ("running", running), ("failed", failed)) if n > cap]
    return Counts(**totals, at_least=over, cap=cap)


def queue_depths(conn: Connection, due: Bound, now: datetime, cap: int = COUNT_CAP) -> Depths:
    """Due and waiting by queue: the first ``cap + 1`` such rows in the reservation's order."""
    rows = (select(dj.c.queue, dj.c.run_at)
            .where(dj.c.failed_at.is_(None), dj.c.locked_at.is_(None), due.where)
            .order_by(*ORDER).limit(_LIMIT).subquery())
    oldest = type_coerce(func.min(rows.c.run_at), LenientTime)
    query = select(rows.c.queue, func.count(), oldest).group_by(rows.c.queue)
    found = conn.execute(query, {"now": now, "limit": cap + 1}).all()
    depths = {str(queue or ""): (count, first if isinstance(first, datetime) else None)
              for queue, count, first in found}
    return Depths(depths, at_least=sum(count for count, _ in depths.values()) > cap, cap=cap)
