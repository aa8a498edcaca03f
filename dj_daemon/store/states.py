"""Tracked job states, written in the same transaction as the queue change they follow.

Functions here take an open connection; the store face calls them inside
its own transactions, so a state never disagrees with the work queue.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from ..errors import UnknownJobError
from ..job import Job, NewJob
from ..schema import delayed_jobs as dj, tracked_jobs as tj, workers as wk
from ..tracking import Gate, State, Tracking, parked_state
from .common import INSERT_JOB


def insert_tracked(conn: Connection, new: NewJob, now: datetime) -> int:
    """One queue row and its ``enqueued`` state row."""
    job_id = conn.execute(INSERT_JOB, new.params(now)).inserted_primary_key[0]
    tracking = new.tracking
    assert tracking is not None
    conn.execute(tj.insert().values(
        job_class=tracking.job_class, identifier=tracking.identifier, gate=tracking.gate,
        state=State.ENQUEUED.value, delayed_job_id=job_id, queue=new.queue, priority=new.priority,
        payload=new.handler, created_at=now, updated_at=now))
    return job_id


def set_state(conn: Connection, job_ids: list[int], state: State, now: datetime, **values: Any) -> None:
    """Move the tracked jobs behind ``job_ids`` (queue ids) to ``state``."""
    if job_ids:
        conn.execute(update(tj).where(tj.c.delayed_job_id.in_(job_ids))
                     .values(state=state.value, updated_at=now, **values))


def sort_reserved(conn: Connection, jobs: list[Job], closed: frozenset[Gate], host: str,
                  now: datetime) -> tuple[list[Job], list[tuple[Job, State]]]:
    """Split freshly locked jobs into those to run (now ``running``) and those a gate parks.

    A parked job leaves the work queue: its state row keeps the payload for
    ``long_jobs restart``.
    """
    tracked = [job.id for job in jobs if job.strand is not None]
    if not tracked:
        return jobs, []
    gates = dict(conn.execute(select(tj.c.delayed_job_id, tj.c.gate).where(tj.c.delayed_job_id.in_(tracked))).all())
    run, parked = [], []
    for job in jobs:
        state = parked_state(gates[job.id], closed) if job.id in gates else None
        (parked.append((job, state)) if state else run.append(job))
    for state in {s for _, s in parked}:
        ids = [job.id for job, s in parked if s is state]
        conn.execute(delete(dj).where(dj.c.id.in_(ids)))
        set_state(conn, ids, state, now, hostname=host, delayed_job_id=None)
    set_state(conn, [job.id for job in run if job.id in gates], State.RUNNING, now, hostname=host,
              started_at=now, finished_at=None)
    return run, parked


def reenqueue(conn: Connection, state_id: int, from_states: tuple[State, ...], host: str, now: datetime) -> int | None:
    """Put one tracked job back in the work queue, if it is still in one of ``from_states``.

    The guarded UPDATE comes first: of two concurrent callers only one sees
    a row change, so a job is enqueued once.
    """
    changed = conn.execute(
        update(tj).where(tj.c.id == state_id, tj.c.state.in_([s.value for s in from_states]))
        .values(state=State.ENQUEUED.value, hostname=host, updated_at=now)).rowcount
    if not changed:
        return None
    row = conn.execute(select(tj).where(tj.c.id == state_id)).mappings().one()
    if row["delayed_job_id"] is not None:  # a job failed for good: its kept row makes way for the new one
        conn.execute(delete(dj).where(dj.c.id == row["delayed_job_id"], dj.c.failed_at.is_not(None)))
    tracking = Tracking(row["job_class"], row["identifier"], row["gate"])
    new = NewJob(row["payload"], row["job_class"], row["queue"], row["priority"], None, tracking)
    job_id = conn.execute(INSERT_JOB, new.params(now)).inserted_primary_key[0]
    conn.execute(update(tj).where(tj.c.id == state_id).values(delayed_job_id=job_id))
    return job_id


class TrackedVerbs:
    """The operators' view of tracked jobs (``long_jobs``), mixed into the store face."""

    def tracked(self, *, identifier: str | None = None, state: str | None = None,
                host: str | None = None, limit: int | None = 500) -> list[dict[str, Any]]:
        """State rows, oldest first, with the lock and heartbeat of the worker running each."""
        query = (select(tj, dj.c.locked_by, dj.c.locked_at, dj.c.attempts, wk.c.last_seen)
                 .select_from(tj.outerjoin(dj, dj.c.id == tj.c.delayed_job_id)
                              .outerjoin(wk, wk.c.name == dj.c.locked_by))
                 .order_by(tj.c.id).limit(limit))
        for column, value in ((tj.c.identifier, identifier), (tj.c.state, state), (tj.c.hostname, host)):
            if value is not None:
                query = query.where(column == value)
        return self.transaction(lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    def tracked_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in State}
        query = select(tj.c.state, func.count()).group_by(tj.c.state)
        counts.update(dict(self.transaction(lambda conn: conn.execute(query).all())))
        return counts

    def get_tracked(self, state_id: int) -> dict[str, Any]:
        row = self.transaction(lambda conn: conn.execute(select(tj).where(tj.c.id == state_id)).mappings().first())
        if row is None:
            raise UnknownJobError(f"no tracked job with id {state_id}")
        return dict(row)

    def reenqueue_tracked(self, state_id: int, from_states: tuple[State, ...], host: str) -> int | None:
        """One job, one transaction: back to ``enqueued`` with a fresh queue row (None if it moved on)."""
        return self.transaction(lambda conn: reenqueue(conn, state_id, from_states, host, self.clock()))

    def reset_stalled(self, state_id: int, reason: str) -> bool:
        """A ``running`` job whose worker is gone goes to ``error``; its queue row is removed."""
        now = self.clock()

        def work(conn: Connection) -> bool:
            row = conn.execute(select(tj.c.delayed_job_id).where(tj.c.id == state_id, tj.c.state == State.RUNNING.value)
                               ).first()
            if row is None:
                return False
            if row[0] is not None:
                conn.execute(delete(dj).where(dj.c.id == row[0]))
            conn.execute(update(tj).where(tj.c.id == state_id).values(
                state=State.ERROR.value, last_error=reason, finished_at=now, updated_at=now, delayed_job_id=None))
            return True
        return self.transaction(work)

    def delete_tracked(self, state_id: int) -> None:
        """Forget a tracked job that is not running, with its queue row if any."""
        def work(conn: Connection) -> None:
            row = conn.execute(select(tj.c.state, tj.c.delayed_job_id).where(tj.c.id == state_id)).first()
            if row is None:
                raise UnknownJobError(f"no tracked job with id {state_id}")
            if row[0] == State.RUNNING.value:
                raise UnknownJobError(f"tracked job {state_id} is running; wait, or reset-stalled if its worker is gone")
            if row[1] is not None:
                conn.execute(delete(dj).where(dj.c.id == row[1]))
            conn.execute(delete(tj).where(tj.c.id == state_id))
        self.transaction(work)
