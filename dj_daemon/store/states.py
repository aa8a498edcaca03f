"""Tracked job states, written in the same transaction as the queue change they follow.

Functions here take an open connection; the store face calls them inside
its own transactions, so a state never disagrees with the work queue.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import UnknownJobError
from ..job import Job, NewJob
from ..schema import delayed_jobs as dj, tracked_jobs as tj, workers as wk
from ..tracking import PARKED, Gate, State, Tracking, parked_state
from . import history
from .common import INSERT_JOB, leniently

log = logging.getLogger(__name__)

#: A state row whose ``delayed_job_id`` names its live queue row. A parked row keeps the id its
#: queue row had (its place, see ``reenqueue``), but that row is gone, and on an old SQLite table
#: without AUTOINCREMENT the id may have been given to another job meanwhile.
LIVE = tj.c.state.not_in([s.value for s in PARKED])


class Reenqueued(NamedTuple):
    """A tracked job back in the queue: its queue id, and whether it kept the place it had."""

    job_id: int
    kept_place: bool


def insert_tracked(conn: Connection, new: NewJob, now: datetime) -> int:
    """One queue row, its ``enqueued`` state row, and that state's history row."""
    job_id = conn.execute(INSERT_JOB, new.params(now)).inserted_primary_key[0]
    tracking = new.tracking
    assert tracking is not None
    state_id = conn.execute(tj.insert().values(
        job_class=tracking.job_class, identifier=tracking.identifier, gate=tracking.gate,
        state=State.ENQUEUED.value, delayed_job_id=job_id, queue=new.queue, priority=new.priority,
        payload=new.handler, created_at=now, updated_at=now)).inserted_primary_key[0]
    history.record(conn, state_id, State.ENQUEUED, now, None)
    return job_id


def set_state(conn: Connection, job_ids: list[int], state: State, now: datetime, **values: Any) -> None:
    """Move the tracked jobs behind ``job_ids`` (queue ids) to ``state``, with a history row each."""
    if job_ids:
        where = (tj.c.delayed_job_id.in_(job_ids), LIVE)
        history.record_moving(conn, where, state, now, values)
        conn.execute(update(tj).where(*where).values(state=state.value, updated_at=now, **values))


def sort_reserved(conn: Connection, jobs: list[Job], closed: frozenset[Gate], host: str,
                  now: datetime) -> tuple[list[Job], list[tuple[Job, State]]]:
    """Split freshly locked jobs into those to run (now ``running``) and those a gate parks.

    A parked job leaves the work queue: its state row keeps the payload, and
    ``delayed_job_id`` keeps the id that is its place in its strand, for
    ``long_jobs restart``.
    """
    tracked = [job.id for job in jobs if job.tracked]
    if not tracked:
        return jobs, []
    gates = dict(conn.execute(select(tj.c.delayed_job_id, tj.c.gate).where(tj.c.delayed_job_id.in_(tracked), LIVE)
                              ).all())
    run, parked = [], []
    for job in jobs:
        state = parked_state(gates[job.id], closed) if job.id in gates else None
        (parked.append((job, state)) if state else run.append(job))
    for state in {s for _, s in parked}:
        ids = [job.id for job, s in parked if s is state]
        conn.execute(delete(dj).where(dj.c.id.in_(ids)))
        set_state(conn, ids, state, now, hostname=host)
    set_state(conn, [job.id for job in run if job.id in gates], State.RUNNING, now, hostname=host,
              started_at=now, finished_at=None)
    return run, parked


def reenqueue(conn: Connection, state_id: int, from_states: tuple[State, ...], host: str, now: datetime,
              hold: str | None = None) -> Reenqueued | None:
    """Put one tracked job back in the work queue, if it is still in one of ``from_states``.

    The guarded UPDATE comes first: of two concurrent callers only one sees
    a row change, so a job is enqueued once. A parked job goes back to its
    place (``_place``); a job in error starts afresh at the back: its strand
    has moved on without it. ``hold`` locks the new row under that name, so
    that no worker takes (and parks again) it before ``release_hold``.
    """
    row = conn.execute(select(tj).where(tj.c.id == state_id)).mappings().first()
    if row is None or State(row["state"]) not in from_states or not conn.execute(
            update(tj).where(tj.c.id == state_id, tj.c.state == row["state"])
            .values(state=State.ENQUEUED.value, hostname=host, updated_at=now)).rowcount:
        return None
    history.record(conn, state_id, State.ENQUEUED, now, host, f"re-enqueued from {row['state']}")
    tracking = Tracking(row["job_class"], row["identifier"], row["gate"])
    if row["state"] == State.ERROR.value and row["delayed_job_id"] is not None:
        # a job failed for good: its kept row makes way for the new one
        conn.execute(delete(dj).where(dj.c.id == row["delayed_job_id"], dj.c.failed_at.is_not(None)))
    new = NewJob(row["payload"], row["job_class"], row["queue"], row["priority"], None, tracking)
    values = {**new.params(now), "locked_by": hold, "locked_at": now if hold else None}
    place = _place(conn, row, tracking.strand, hold) if row["state"] != State.ERROR.value else None
    job_id = _insert_at(conn, values, place, row["created_at"])
    conn.execute(update(tj).where(tj.c.id == state_id).values(delayed_job_id=job_id))
    return Reenqueued(job_id, job_id == place)


def _place(conn: Connection, row: Any, strand: str, hold: str | None) -> int | None:
    """The queue id a parked job had, if it can have it again: not when it has none (parked
    before ids were kept), nor when a newer job of its strand is running (a worker holds it),
    as the old id would then let the two run at once."""
    place = row["delayed_job_id"]
    if place is None:
        return None
    overtaken = conn.execute(select(dj.c.id).where(
        dj.c.strand == strand, dj.c.id > place, dj.c.locked_by.is_not(None),
        dj.c.locked_by != (hold or "")).limit(1)).first()
    if overtaken is not None:
        log.warning("tracked job %s loses its place (job %s): job %s of its strand is running", row["id"], place,
                    overtaken[0])
        return None
    return place


def _insert_at(conn: Connection, values: dict[str, Any], place: int | None, enqueued_at: datetime) -> int:
    """Insert the queue row back at its ``place``: its old id (its turn in its strand), and as
    ``run_at`` the time it was first enqueued (its turn among the other jobs; the run_at it had
    is not kept, and was that time or later). An id already taken (an old SQLite table without
    AUTOINCREMENT gives a deleted highest id again) falls back to a new one, in a SAVEPOINT."""
    if place is None:
        return conn.execute(INSERT_JOB, values).inserted_primary_key[0]
    values = {**values, "run_at": enqueued_at}
    try:
        with conn.begin_nested():
            return conn.execute(INSERT_JOB, {**values, "id": place}).inserted_primary_key[0]
    except IntegrityError:
        log.warning("job id %s was given to another job meanwhile: re-enqueued with a new id", place)
    return conn.execute(INSERT_JOB, values).inserted_primary_key[0]


class TrackedVerbs:
    """The operators' view of tracked jobs (``long_jobs``), mixed into the store face."""

    def tracked(self, *, identifier: str | None = None, state: str | None = None,
                host: str | None = None, limit: int | None = 500) -> list[dict[str, Any]]:
        """State rows, oldest first, with the lock and heartbeat of the worker running each."""
        # times read leniently: a hand-written row's garbage shows as it is, not as a failed status
        query = (select(*map(leniently, tj.c), dj.c.locked_by, leniently(dj.c.locked_at), dj.c.attempts,
                        leniently(wk.c.last_seen))
                 .select_from(tj.outerjoin(dj, (dj.c.id == tj.c.delayed_job_id) & LIVE)
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

    def reenqueue_tracked(self, state_id: int, from_states: tuple[State, ...], host: str,
                          hold: str | None = None) -> Reenqueued | None:
        """One job, one transaction: back to ``enqueued`` with a queue row (None if it moved on)."""
        return self.transaction(lambda conn: reenqueue(conn, state_id, from_states, host, self.clock(), hold))

    def release_hold(self, hold: str) -> int:
        """Let workers take the jobs ``reenqueue`` put back under ``hold``; returns how many."""
        statement = update(dj).where(dj.c.locked_by == hold).values(locked_by=None, locked_at=None,
                                                                   updated_at=self.clock())
        return self.transaction(lambda conn: conn.execute(statement).rowcount)

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
            history.record_moving(conn, [tj.c.id == state_id], State.ERROR, now, {"last_error": reason})
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
            if row[1] is not None and State(row[0]) not in PARKED:
                conn.execute(delete(dj).where(dj.c.id == row[1]))
            conn.execute(delete(tj).where(tj.c.id == state_id))
            history.forget(conn, [state_id])
        self.transaction(work)
