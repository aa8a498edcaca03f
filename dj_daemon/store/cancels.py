"""Cancelling jobs in the database: a waiting job is removed, a running one gets a request.

A waiting job's row is deleted at once (a tracked one becomes ``cancelled``). A running job's
row stays until its worker ends it: the request (``delayed_job_cancel_requests``) names the
worker that holds it, and that worker's supervisor, on whatever host, reads it in its upkeep
(``requests_of``), signals the worker, and kills it after ``cancel_grace`` (see
``dj_daemon.cancel``). Whoever ends the job then (``finish_cancelled`` from the worker,
``settle_cancelled`` from ``Store.worker_gone`` after a kill) records it as cancelled: the
row, its unique key and its request go in one transaction, and it is never retried.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, NamedTuple, Sequence, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from ..errors import UnknownJobError
from ..job import Job, tracks
from ..schema import cancel_requests as cr, delayed_jobs as dj
from ..tracking import State
from . import common, states, unique

T = TypeVar("T")


class Request(NamedTuple):
    """A standing request to stop job ``job_id``, asked of ``worker``; ``holder`` is the worker
    that holds the job now (None: nobody, or the job is gone)."""

    job_id: int
    worker: str
    holder: str | None


def settle(conn: Connection, ids: Sequence[int], tracked: Sequence[int], now: datetime) -> None:
    """What goes with cancelled jobs whose rows are gone: their keys and requests; tracked ones
    (``tracked``) become ``cancelled``."""
    if ids:
        unique.release(conn, ids)
        conn.execute(delete(cr).where(cr.c.job_id.in_(list(ids))))
        states.set_state(conn, list(tracked), State.CANCELLED, now, finished_at=now, delayed_job_id=None,
                         last_error="cancelled")


def cancel_in(conn: Connection, job_id: int, now: datetime) -> str | None:
    """Cancel one job in ``conn``'s transaction: ``"cancelled"`` (it waited: removed),
    ``"stopping"`` (it runs: its worker is asked to stop), ``"failed"`` (failed for good: nothing
    to stop, left as it is), None (no such job; a stale request of it is dropped)."""
    row = conn.execute(select(dj.c.locked_by, dj.c.failed_at, dj.c.strand).where(dj.c.id == job_id)
                       .with_for_update()).first()
    conn.execute(delete(cr).where(cr.c.job_id == job_id))
    if row is None:
        return None
    if row.failed_at is not None:
        return "failed"
    if row.locked_by is None:
        conn.execute(delete(dj).where(dj.c.id == job_id))
        settle(conn, [job_id], [job_id] if tracks(row.strand) else [], now)
        return "cancelled"
    conn.execute(cr.insert().values(job_id=job_id, worker=row.locked_by, requested_at=now))
    return "stopping"


def settle_cancelled(conn: Connection, held: list[int], now: datetime) -> list[int]:
    """Of jobs a gone worker held, remove those it was asked to stop (cancelled, not retried);
    returns the others."""
    if not held:
        return held
    asked = set(conn.execute(select(cr.c.job_id).where(cr.c.job_id.in_(held))).scalars())
    if not asked:
        return held
    ids = sorted(asked)
    tracked = list(conn.execute(select(dj.c.id).where(dj.c.id.in_(ids), common.tracked())).scalars())
    conn.execute(delete(dj).where(dj.c.id.in_(ids)))
    settle(conn, ids, tracked, now)
    return [job_id for job_id in held if job_id not in asked]


class CancelVerbs:
    """The ``Store``'s cancelling verbs (mixed in: they use its ``transaction`` and ``clock``)."""

    transaction: Callable[..., Any]
    clock: Callable[[], datetime]

    def cancel(self, job_id: int) -> str:
        """Cancel a job (see ``cancel_in``): ``"cancelled"`` or ``"stopping"``; one-line
        ``UnknownJobError`` for an unknown id or a job failed for good."""
        outcome = self.transaction(lambda conn: cancel_in(conn, job_id, self.clock()))
        if outcome is None:
            raise UnknownJobError(f"no job with id {job_id}")
        if outcome == "failed":
            raise UnknownJobError(f"job {job_id} has failed for good: nothing to cancel "
                                  f"(`delayed_job jobs delete {job_id}` removes it)")
        return str(outcome)

    def cancel_requested(self, job_id: int, worker: str) -> bool:
        """Whether ``worker`` is asked to stop job ``job_id`` (a worker checks, once signalled)."""
        query = select(cr.c.job_id).where(cr.c.job_id == job_id, cr.c.worker == worker)
        return bool(self.transaction(lambda conn: conn.execute(query).first()))

    def finish_cancelled(self, job: Job) -> None:
        """A worker stopped a job it was asked to stop: the row goes, recorded as cancelled."""
        def work(conn: Connection) -> None:
            conn.execute(delete(dj).where(dj.c.id == job.id, dj.c.locked_by == job.locked_by))
            settle(conn, [job.id], [job.id] if job.tracked else [], self.clock())
        self.transaction(work)

    def requests_of(self, hostname: str) -> list[Request]:
        """The standing requests asked of this host's workers, with who holds each job now: one
        read of a table that is empty but for jobs being cancelled (the supervisor's upkeep)."""
        query = (select(cr.c.job_id, cr.c.worker, dj.c.locked_by)
                 .select_from(cr.outerjoin(dj, dj.c.id == cr.c.job_id))
                 .where(cr.c.worker.startswith(f"{hostname}:", autoescape=True)))
        return self.transaction(lambda conn: [Request(*row) for row in conn.execute(query).all()])

    def reconsider(self, job_id: int) -> str | None:
        """A request whose job its worker no longer holds: cancel the job again as it is now
        (removed if it waits again, asked of its new worker if another runs it, dropped if gone)."""
        return self.transaction(lambda conn: cancel_in(conn, job_id, self.clock()))
