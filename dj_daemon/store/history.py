"""The history of tracked jobs' states: one row per state a tracked job entered.

Each row is written in the transaction that moves the job, by the functions
of ``states`` that move it, so the history never disagrees with the state.
Only tracked jobs have rows here: an untracked job's way through the queue
runs no statement of this module. A row's ``note`` is the first line of the
error that moved it (``Class: message``), or what an operator did; the full
traceback stays in ``last_error`` of the tracked and queue rows.

A database of an older version has no history table until ``delayed_job db
init`` adds it. Until then nothing is recorded (``kept``), rather than every
tracked job failing for a missing table: an application upgraded before its
database still enqueues, and its daemon still runs tracked jobs.
"""
from __future__ import annotations

import logging
import time
import weakref
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Text, delete, inspect, literal, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from ..schema import state_history as sh, tracked_jobs as tj
from ..tracking import State
from .common import leniently

#: The longest note kept (a message can be long; the first line is what a history shows).
NOTE_LIMIT = 1000
COLUMNS = ("state_id", "state", "at", "hostname", "note")
#: Seconds before a missing table is looked for again (``db init`` may have made it meanwhile).
LOOK_AGAIN = 60.0
log = logging.getLogger(__name__)
#: Per engine: whether the table is there, and when (monotonic) a missing one is looked for again.
_found: weakref.WeakKeyDictionary[Engine, tuple[bool, float]] = weakref.WeakKeyDictionary()


def kept(conn: Connection) -> bool:
    """Whether this database has the history table: asked once per engine (once a minute while
    it has none), so that a tracked job's move costs no more than the INSERT."""
    found, look_again = _found.get(conn.engine, (False, 0.0))
    if found or time.monotonic() < look_again:
        return found
    found = inspect(conn).has_table(sh.name)
    if not found:
        log.warning("table %s is missing: no history of tracked jobs is kept until `delayed_job db init` "
                    "creates it", sh.name)
    _found[conn.engine] = (found, time.monotonic() + LOOK_AGAIN)
    return found


def note_of(error: str | None) -> str | None:
    """An error's first line, cut to ``NOTE_LIMIT``; None for none."""
    text = (error or "").strip()
    return text.splitlines()[0][:NOTE_LIMIT] if text else None


def record(conn: Connection, state_id: int, state: State, now: datetime, host: str | None,
           note: str | None = None) -> None:
    """One row: tracked job ``state_id`` entered ``state`` at ``now`` on ``host``."""
    if kept(conn):
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
    if not kept(conn):
        return
    host = literal(values["hostname"], tj.c.hostname.type) if "hostname" in values else tj.c.hostname
    source = select(tj.c.id, literal(state.value, tj.c.state.type), literal(now, tj.c.updated_at.type), host,
                    literal(note_of(values.get("last_error")), Text)).where(*where)
    conn.execute(sh.insert().from_select(COLUMNS, source))


def of(conn: Connection, state_id: int) -> list[dict[str, Any]]:
    """Tracked job ``state_id``'s history, oldest first (none kept: empty)."""
    if not kept(conn):
        return []
    query = select(*map(leniently, sh.c)).where(sh.c.state_id == state_id).order_by(sh.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def forget(conn: Connection, state_ids: Sequence[int]) -> int:
    """Delete the history of these tracked jobs (their rows are going); returns how many rows."""
    if not state_ids or not kept(conn):
        return 0
    return conn.execute(delete(sh).where(sh.c.state_id.in_(list(state_ids)))).rowcount
