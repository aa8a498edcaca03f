"""The worker registry: one heartbeat row per live worker, and the settling of one that ended.

A worker registers itself (``register_worker``); its supervisor stamps the rows
of all its workers at once (``beat``) and, when one ends, settles the jobs it
still held and drops its row (``worker_gone``). Any host reads them: ``long_jobs
status`` and the web page (``workers``); a supervisor at start, to free the jobs
of its host's workers of an earlier run (``workers``, ``lockers``), and on each
heartbeat, those of workers elsewhere whose host went silent (``silent_workers``).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Collection

from sqlalchemy import String, Text, cast, delete, literal, select, update
from sqlalchemy.engine import Connection

from ..schema import delayed_jobs as dj, workers as wk
from ..tracking import State
from . import cancels, common, states, unique
from .database import Database
from .queue import unlock_unstarted


class WorkerRegistry(Database):
    """The ``Store``'s worker registry (mixed in): heartbeat rows, and what an ended worker held."""

    def register_worker(self, name: str, hostname: str, pid: int, completed: Collection[int] | None = None) -> int:
        """A fresh heartbeat row for a new worker, in the transaction that settles what a dead
        worker of the same name still held, as ``worker_gone`` does with ``completed`` (that
        one's journal): a pid, so a name, comes back once pids wrap (see ``journal``). Returns
        how many jobs that was."""
        now = self.clock()
        error = f"worker {name} gone: found holding it when a new worker took its pid"

        def work(conn: Connection) -> int:
            count = _settle(conn, name, error, completed, now)
            conn.execute(wk.insert().values(name=name, hostname=hostname, pid=pid, started_at=now, last_seen=now))
            return count
        return self.transaction(work)

    def beat(self, current_jobs: dict[str, int | None]) -> None:
        """Stamp ``last_seen`` of these workers, with the job each is running: one UPDATE per
        distinct job (idle workers share one)."""
        now = self.clock()
        by_job: dict[int | None, list[str]] = {}
        for name, job_id in current_jobs.items():
            by_job.setdefault(job_id, []).append(name)

        def work(conn: Connection) -> None:
            for job_id, names in by_job.items():
                conn.execute(update(wk).where(wk.c.name.in_(names)).values(last_seen=now, current_job_id=job_id))
        if current_jobs:
            self.transaction(work)

    def worker_gone(self, name: str, error: str, completed: Collection[int] | None = None) -> int:
        """A worker ended: settle the jobs it still held, drop its heartbeat; returns how many it held.

        ``completed`` are the jobs its journal lists as finished (see ``journal``): their rows,
        not yet deleted, go. A worker runs a batch in ``ORDER``, so of the rest the first was
        running, and gets an attempt counted and ``error`` recorded; the others were never
        started and are only unlocked. Jobs it was asked to stop (``cancels``) are removed as
        cancelled, whichever they were: a cancelled job is never run again. ``completed`` None
        means nothing is known (another host, a worker without a journal): every job it held
        counts as started. Every freed job keeps
        its ``run_at``, so its place in the queue: it runs before what was enqueued after it.
        """
        now = self.clock()
        return self.transaction(lambda conn: _settle(conn, name, error, completed, now))

    def workers(self, hostname: str | None = None) -> list[dict[str, Any]]:
        """Heartbeat rows, of one host or of all."""
        query = select(*(common.leniently(column) for column in wk.c)).order_by(wk.c.hostname, wk.c.name)
        if hostname is not None:
            query = query.where(wk.c.hostname == hostname)
        return self._read(lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    def lockers(self, hostname: str) -> list[str]:
        """Names of this host's workers that hold jobs now, heartbeat row or not (a range of the
        ``locked_by`` index)."""
        query = select(dj.c.locked_by).where(dj.c.locked_by.startswith(f"{hostname}:", autoescape=True)).distinct()
        return self.transaction(lambda conn: list(conn.execute(query).scalars()))

    def silent_workers(self, timeout: float) -> list[str]:
        """Workers whose last heartbeat is older than ``timeout`` seconds (their host is gone)."""
        limit = self.clock() - timedelta(seconds=timeout)
        query = select(wk.c.name).where(wk.c.last_seen < limit)
        return self.transaction(lambda conn: list(conn.execute(query).scalars()))


def _settle(conn: Connection, name: str, error: str, completed: Collection[int] | None, now: datetime) -> int:
    """Drop worker ``name``'s heartbeat row and settle the jobs it held (see
    ``WorkerRegistry.worker_gone``); how many it held."""
    conn.execute(delete(wk).where(wk.c.name == name))
    if completed:
        done = list(conn.execute(select(dj.c.id).where(dj.c.id.in_(completed), dj.c.locked_by == name)).scalars())
        conn.execute(delete(dj).where(dj.c.id.in_(done)))
        unique.release(conn, done)
        states.set_state(conn, done, State.COMPLETED, now, finished_at=now, delayed_job_id=None)
    held = common.held_by(conn, name)
    count, held = len(held), cancels.settle_cancelled(conn, held, now)  # cancelled: gone, never retried
    cut, unstarted = (held, []) if completed is None else (held[:1], held[1:])
    states.set_state(conn, cut, State.ENQUEUED, now, last_error=error)
    unlock_unstarted(conn, unstarted, name, now)
    if cut:
        # last_error first: MySQL evaluates SET left to right, with the values set so far
        attempt = literal(f"{error} (attempt ", Text) + cast(dj.c.attempts + 1, String) + ")"
        conn.execute(update(dj).where(dj.c.id.in_(cut), dj.c.locked_by == name).ordered_values(
            (dj.c.last_error, attempt), (dj.c.attempts, dj.c.attempts + 1), (dj.c.locked_at, None),
            (dj.c.locked_by, None), (dj.c.updated_at, now)))
    return count
