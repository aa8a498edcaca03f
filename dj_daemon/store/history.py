"""The history of tracked jobs' states: one row per state a tracked job entered.

Each row is written in the transaction that moves the job, by the functions
of ``states`` that move it, so the history never disagrees with the state.
Only tracked jobs have rows here: an untracked job's way through the queue
runs no statement of this module. A row's ``note`` is the first line of the
error that moved it (``Class: message``), or what an operator did; the full
traceback stays in ``last_error`` of the tracked and queue rows.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Text, delete, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..schema import state_history as sh, tracked_jobs as tj
from ..tracking import State
from .common import leniently

#: The longest note kept (a message can be long; the first line is what a history shows).
NOTE_LIMIT = 1000
COLUMNS = ("state_id", "state", "at", "hostname", "note")


def note_of(error: str | None) -> str | None:
    """An error's first line, cut to ``NOTE_LIMIT``; None for none."""
    text = (error or "").strip()
    return text.splitlines()[0][:NOTE_LIMIT] if text else None


def record(conn: Connection, state_id: int, state: State, now: datetime, host: str | None,
           note: str | None = None) -> None:
    """One row: tracked job ``state_id`` entered ``state`` at ``now`` on ``host``."""
    conn.execute(sh.insert().values(state_id=state_id, state=state.value, at=now, hostname=host,
                                    note=note_of(note)))


def record_moving(conn: Connection, where: Sequence[ColumnElement[bool]], state: State, now: datetime,
                  values: dict[str, Any]) -> None:
    """One row for each tracked job ``where`` selects, about to be moved to ``state`` with ``values``
    (the UPDATE comes next, in the same transaction): one INSERT ... SELECT for any number of jobs.

    Run before the UPDATE, which may clear what selects the jobs (``delayed_job_id``). At READ
    COMMITTED (MySQL, PostgreSQL) the SELECT is a plain read: it takes no lock the UPDATE would
    then have to upgrade; SQLite runs one writer at a time.
    """
    host = literal(values["hostname"], tj.c.hostname.type) if "hostname" in values else tj.c.hostname
    source = select(tj.c.id, literal(state.value, tj.c.state.type), literal(now, tj.c.updated_at.type), host,
                    literal(note_of(values.get("last_error")), Text)).where(*where)
    conn.execute(sh.insert().from_select(COLUMNS, source))


def of(conn: Connection, state_id: int) -> list[dict[str, Any]]:
    """Tracked job ``state_id``'s history, oldest first."""
    query = select(*map(leniently, sh.c)).where(sh.c.state_id == state_id).order_by(sh.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def forget(conn: Connection, state_ids: Sequence[int]) -> int:
    """Delete the history of these tracked jobs (their rows are going); returns how many rows."""
    if not state_ids:
        return 0
    return conn.execute(delete(sh).where(sh.c.state_id.in_(list(state_ids)))).rowcount
