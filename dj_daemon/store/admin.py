"""The operators' verbs on the work queue: read jobs, retry, delete or clear them, count them.

What ``delayed_job jobs``, ``delayed_job clear``, ``long_jobs status``, the
web page, STATUS= and the metrics call. A job that a worker holds is never
changed here (``_change`` says it is running); a tracked job that is removed
is left in ``error``, saying why, in the same transaction.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from ..errors import UnknownJobError
from ..job import Job
from ..schema import delayed_jobs as dj
from ..tracking import State
from . import common, counting, states
from .database import Database


class AdminVerbs(Database):
    """The ``Store``'s operators' verbs (mixed in): reads, retry, delete, clear, counts."""

    def get(self, job_id: int) -> Job:
        query = select(*common.EVERY_COLUMN).where(dj.c.id == job_id)
        row = self._read(lambda conn: conn.execute(query).mappings().first())
        if row is None:
            raise UnknownJobError(f"no job with id {job_id}")
        return Job.from_row(row)

    def jobs(self, *, failed: bool | None = None, queue: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs in the queue, oldest first; ``failed`` narrows to failed or to not-failed ones."""
        query = select(*common.EVERY_COLUMN).order_by(dj.c.id).limit(limit)
        if failed is not None:
            query = query.where(dj.c.failed_at.is_not(None) if failed else dj.c.failed_at.is_(None))
        if queue is not None:
            query = query.where(dj.c.queue == queue)
        return self._read(lambda conn: [Job.from_row(r) for r in conn.execute(query).mappings()])

    def retry(self, job_id: int) -> Job:
        """Make a failed (or waiting) job run now, as delayed_job's ``retry``; attempts start over.
        A stray ``locked_at`` goes too: on SQLite, one that is no date would keep the job from
        ever being ready."""
        now = self.clock()
        self._change(job_id, update(dj).where(dj.c.locked_by.is_(None)).values(
            failed_at=None, attempts=0, run_at=now, locked_at=None, updated_at=now), State.ENQUEUED, finished_at=None)
        return self.get(job_id)

    def delete(self, job_id: int) -> None:
        """Remove a job that is not running (a tracked one is left in ``error``, saying so)."""
        self._change(job_id, delete(dj).where(dj.c.locked_by.is_(None)), State.ERROR,
                     last_error="deleted from the work queue by an operator", delayed_job_id=None)

    def _change(self, job_id: int, statement: Any, state: State, **values: Any) -> None:
        """Apply ``statement`` to one idle job and move its tracked state, or say why not."""
        def work(conn: Connection) -> None:
            states.set_state(conn, [job_id], state, self.clock(), **values)
            if conn.execute(statement.where(dj.c.id == job_id)).rowcount == 0:
                exists = conn.execute(select(dj.c.id).where(dj.c.id == job_id)).first()
                raise UnknownJobError(f"job {job_id} is running; try again when it is done"
                                      if exists else f"no job with id {job_id}")
        self.transaction(work)

    def clear(self, queue: str | None = None) -> int:
        """Delete every job not running (of ``queue`` if given); returns how many. Tracked ones
        are left in ``error``, saying so, as with ``delete``."""
        idle = [dj.c.locked_by.is_(None)] + ([dj.c.queue == queue] if queue is not None else [])

        def work(conn: Connection) -> int:
            ids = list(conn.execute(select(dj.c.id).where(*idle, common.tracked())).scalars())
            states.set_state(conn, ids, State.ERROR, self.clock(), delayed_job_id=None,
                             last_error="cleared from the work queue by an operator")
            return conn.execute(delete(dj).where(*idle)).rowcount
        return self.transaction(work)

    def counts(self, cap: int = counting.COUNT_CAP) -> counting.Counts:
        """How many jobs are waiting, running and failed, each counted up to ``cap`` (past it, a
        lower bound named in ``at_least``): a few index ranges, however many rows are stored."""
        listed = isinstance(self._due, common.ListedPriorities)
        return self.transaction(lambda conn: counting.counts(conn, listed, cap))

    def queue_depths(self, cap: int = counting.COUNT_CAP) -> counting.Depths:
        """Jobs due and waiting by queue (``""`` for none), with the oldest one's ``run_at`` (None
        when that is no valid date, a defective row failed at its turn), for STATUS=, the metrics
        and the web page. It reads the due rows only (``common.Due``), and no more than ``cap`` + 1
        of them, in the reservation's order: past that, ``at_least`` (see ``counting.Depths``)."""
        return self._read(lambda conn: counting.queue_depths(conn, self._due.clause(conn), self.clock(), cap))
