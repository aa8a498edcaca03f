"""Unique keys in the database: claimed in the transaction of the job's INSERT, released with its end.

A claim is an INSERT of the key that does nothing on a duplicate (each dialect's own form,
``INSERT_IGNORING``), never a read then an insert: the primary key decides between racing
enqueues, on every dialect. The server makes the second INSERT wait for the first transaction
(MySQL's and PostgreSQL's row lock, SQLite's one writer), then sees its row.

A key found taken is read without a lock (a locking read or update there deadlocked eight
enqueuers on MariaDB: each held the shared lock its INSERT IGNORE took on the duplicate, and
wanted it exclusive), and taken over when its holder holds it no more (see ``dj_daemon.unique``):
expired, or its job gone, failed for good, or started under ``"waiting"``. So a key whose
row outlived its job (a job deleted by an operator, a worker that died after its job's row
went) never blocks. The key rows of finished jobs are deleted by ``release``, in the
transaction that ends the job, and only for jobs whose handler names a key: jobs without one
pay no statement.
"""
from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any, Callable, Sequence

from sqlalchemy import Insert, and_, bindparam, delete, exists, or_, select, update
from sqlalchemy.engine import Connection

from ..schema import delayed_jobs as dj, unique_keys as uk
from ..unique import Unique


#: Rounds of insert, read, take over: another round only when another enqueue took over first.
CLAIM_TRIES = 3
NOW = bindparam("now", type_=uk.c.expires_at.type)


def _dialect(name: str) -> Any:
    """SQLAlchemy's dialect ``name``, imported when first used: a daemon needs its own only."""
    return importlib.import_module(f"sqlalchemy.dialects.{name}")


def _ignoring_mysql() -> Insert:
    return _dialect("mysql").insert(uk).prefix_with("IGNORE")


def _doing_nothing_on_conflict(name: str) -> Callable[[], Insert]:
    return lambda: _dialect(name).insert(uk).on_conflict_do_nothing(index_elements=[uk.c.name])


#: Per dialect name: an INSERT of a key row that does nothing when the key is there.
INSERT_IGNORING: dict[str, Callable[[], Insert]] = {
    "mysql": _ignoring_mysql,
    "mariadb": _ignoring_mysql,
    "postgresql": _doing_nothing_on_conflict("postgresql"),
    "sqlite": _doing_nothing_on_conflict("sqlite"),
}


def _holding() -> Any:
    """Whether a key row's job still holds it (``now`` bound): not expired, and its job there,
    not failed for good, and not started if the key is held while waiting only."""
    alive = select(dj.c.id).where(dj.c.id == uk.c.job_id, dj.c.failed_at.is_(None))
    waiting = alive.where(dj.c.locked_by.is_(None))
    return and_(
        or_(uk.c.expires_at.is_(None), uk.c.expires_at > NOW),
        or_(and_(uk.c.scope == "running", exists(alive)), and_(uk.c.scope == "waiting", exists(waiting))),
    )


def claim(conn: Connection, unique: Unique, now: datetime) -> int | None:
    """Claim ``unique.key`` for a job about to be inserted in ``conn``'s transaction (then
    ``bind`` it); or, if another job holds it, that job's id (insert nothing then)."""
    values = {"name": unique.key, "job_id": None, "scope": unique.scope, "expires_at": unique.expires_at}
    for _ in range(CLAIM_TRIES):
        if conn.execute(INSERT_IGNORING[conn.dialect.name]().values(**values)).rowcount == 1:
            return None
        row = conn.execute(select(uk.c.job_id, _holding()).where(uk.c.name == unique.key), {"now": now}).first()
        if row is not None and row[1]:
            return int(row[0])
        # its holder holds it no more: take it over, unless another enqueue did first (then look again)
        takeover = update(uk).where(uk.c.name == unique.key, ~_holding()).values(
            job_id=None, scope=unique.scope, expires_at=unique.expires_at)
        if conn.execute(takeover, {"now": now}).rowcount == 1:
            return None
    raise KeyTaken(f"unique key {unique.key!r} changed hands {CLAIM_TRIES} times during one enqueue")


class KeyTaken(Exception):
    """Another enqueue took over a free key between this one's read and its update (rare)."""


def bind(conn: Connection, unique: Unique, job_id: int) -> None:
    """The claimed key now names its job."""
    conn.execute(update(uk).where(uk.c.name == unique.key).values(job_id=job_id))


def release(conn: Connection, job_ids: Sequence[int]) -> None:
    """Delete the keys these jobs hold (jobs that ended: done, failed for good, cancelled)."""
    if job_ids:
        conn.execute(delete(uk).where(uk.c.job_id.in_(list(job_ids))))


def keyed(jobs: Sequence[Any]) -> list[int]:
    """The ids of those jobs whose handler names a unique key (``Job.unique_key``)."""
    return [job.id for job in jobs if job.unique_key is not None]
