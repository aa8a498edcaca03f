"""Kept results: the outcome of a job whose own code records one (Django tasks).

Ordinary jobs never touch this table, so the queue pays nothing for it. The
job's code writes its row: ``start`` as an attempt begins, ``add_error`` when
one fails, ``finish`` once the job succeeded or failed for good, with
``expires_at`` a ``ttl`` later. Each
finish also deletes up to ``PRUNE_BATCH`` expired rows, oldest first: the
table empties faster than it fills, with no sweeper, and no statement deletes
(or locks) many rows at once.

Functions take an open connection, as ``states`` does, and the caller owns
the transaction: an SQLAlchemy ``Connection``, or the Django adapter whose
``execute`` runs these same statements on a Django connection.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from ..job import Job
from ..schema import delayed_jobs as dj, results as rt

PRUNE_BATCH = 10


class Status(str, Enum):
    """A result's status, named as ``django.tasks.TaskResultStatus`` names them."""

    READY = "READY"            #: waiting in the queue, also between retries (derived, never stored)
    RUNNING = "RUNNING"        #: an attempt has started
    SUCCESSFUL = "SUCCESSFUL"  #: succeeded; ``return_value`` holds what it returned, as JSON
    FAILED = "FAILED"          #: failed for good; ``errors`` says why


FINISHED = (Status.SUCCESSFUL.value, Status.FAILED.value)


def get(conn: Connection, result_id: str) -> dict[str, Any] | None:
    """The result row, if one was written."""
    row = conn.execute(select(rt).where(rt.c.id == result_id)).mappings().first()
    return dict(row) if row is not None else None


def queued(conn: Connection, job_id: int) -> dict[str, Any] | None:
    """The job's queue row, while it waits, runs, or stays failed."""
    row = conn.execute(select(dj).where(dj.c.id == job_id)).mappings().first()
    return dict(row) if row is not None else None


def start(conn: Connection, result_id: str, job: Job, now: datetime) -> dict[str, Any]:
    """Record that an attempt of ``job`` begins on the worker holding it; returns the row now.

    ``worker_ids`` keeps one name per attempt the queue counted, so that its
    length is the attempt number; an attempt that never started (its worker
    died while the job waited in its batch) has an empty name.
    """
    row = get(conn, result_id)
    attempt = job.attempts + 1
    seen = json.loads(row["worker_ids"]) if row else []
    values = {"status": Status.RUNNING.value, "last_attempted_at": now, "finished_at": None, "expires_at": None,
              "started_at": row["started_at"] if row and row["started_at"] else now,
              "worker_ids": json.dumps((seen + [""] * attempt)[:attempt - 1] + [job.locked_by or ""]),
              "return_value": None}
    if row is None:
        row = _new_row(result_id, job)
        conn.execute(rt.insert().values(**row, **values))
    else:
        conn.execute(update(rt).where(rt.c.id == result_id).values(**values))
    return {**row, **values}


def add_error(conn: Connection, result_id: str, error: dict[str, str]) -> bool:
    """Append a failed attempt's error; False when there is no row (the attempt never started)."""
    row = conn.execute(select(rt.c.errors).where(rt.c.id == result_id)).mappings().first()
    if row is None:
        return False
    errors = json.loads(row["errors"] or "[]") + [error]
    conn.execute(update(rt).where(rt.c.id == result_id).values(errors=json.dumps(errors)))
    return True


def finish(conn: Connection, result_id: str, job: Job, status: Status, now: datetime, ttl: timedelta, *,
           return_value: Any = None, errors: list[dict[str, str]] | None = None) -> None:
    """Record the outcome, kept for ``ttl``, then prune a few expired rows.

    ``errors``, when given, replace those recorded. A job refused before it
    started has no row yet: it gets one here.
    """
    values = {"status": status.value, "finished_at": now, "expires_at": now + ttl,
              "return_value": json.dumps(return_value) if status is Status.SUCCESSFUL else None}
    if errors is not None:
        values["errors"] = json.dumps(errors)
    if conn.execute(update(rt).where(rt.c.id == result_id).values(**values)).rowcount == 0:
        conn.execute(rt.insert().values(**_new_row(result_id, job), worker_ids="[]", **values))
    prune(conn, now)


def _new_row(result_id: str, job: Job) -> dict[str, Any]:
    return {"id": result_id, "handler": job.handler, "enqueued_at": job.created_at or job.run_at}


def prune(conn: Connection, now: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` expired rows, oldest first; returns how many.

    The ids come through a derived table, which MySQL allows where it refuses
    ``LIMIT`` in an ``IN`` subquery on the table being changed.
    """
    expired = (select(rt.c.id).where(rt.c.expires_at < now).order_by(rt.c.expires_at).limit(limit)
               .subquery("expired"))
    return conn.execute(delete(rt).where(rt.c.id.in_(select(expired.c.id)))).rowcount
