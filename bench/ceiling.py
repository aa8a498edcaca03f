"""The ceiling: a minimal raw-SQL drain loop, one process (``python -m bench.ceiling BACKEND URL``).

MariaDB: PyMySQL at READ COMMITTED (PostgreSQL: psycopg, the same statements at its default
READ COMMITTED, ``DELETE ... WHERE id = ANY(...)``), ``SELECT id, handler ... ORDER BY
priority, run_at LIMIT 50 FOR UPDATE SKIP LOCKED``, ``DELETE ... WHERE id IN
(...)``, run each job, commit (the DELETE before the jobs, so that a deadlock
on it, retried from the start, never runs a job twice). SQLite: ``BEGIN IMMEDIATE``, the same select
(without the locking clause), delete, run, commit. The jobs run are the
same ``bench.jobs`` functions the daemon runs (their side effect is counted
the same way), called directly from the decoded JSON handler: no allow-list,
no hooks, no deadline, one round trip for 50 jobs.
Exits 0 when it finds nothing left, or after the batch in hand on SIGTERM.
"""
from __future__ import annotations

import signal

stopping = False


def _stop(signum: int, frame: object) -> None:
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, _stop)  # first, before the imports: a stop may come early

import json  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from sqlalchemy.engine import make_url  # noqa: E402

from . import jobs  # noqa: E402

BATCH = 50


def perform(handler: str) -> None:
    data = json.loads(handler)
    getattr(jobs, data["target"].partition(":")[2])(*data["args"], **data["kwargs"])


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def drain_mariadb(url: str) -> None:
    import pymysql

    u = make_url(url)
    conn = pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=u.database, autocommit=False)
    cur = conn.cursor()
    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    select = ("SELECT id, handler FROM delayed_jobs WHERE run_at <= %s AND failed_at IS NULL "
              "AND locked_at IS NULL ORDER BY priority, run_at LIMIT %s FOR UPDATE SKIP LOCKED")
    while not stopping:
        try:
            cur.execute(select, (now(), BATCH))
            rows = cur.fetchall()
            if not rows:
                conn.commit()
                break
            cur.execute(f"DELETE FROM delayed_jobs WHERE id IN ({', '.join(['%s'] * len(rows))})",
                        [row[0] for row in rows])
        except pymysql.err.OperationalError as exc:  # deadlock / lock wait: nothing ran yet, start over
            if exc.args[0] not in (1213, 1205):
                raise
            conn.rollback()
            continue
        for _, handler in rows:
            perform(handler)
        conn.commit()
    conn.close()


def drain_postgresql(url: str) -> None:
    import psycopg

    conn = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    cur = conn.cursor()
    select = ("SELECT id, handler FROM delayed_jobs WHERE run_at <= %s AND failed_at IS NULL "
              "AND locked_at IS NULL ORDER BY priority, run_at LIMIT %s FOR UPDATE SKIP LOCKED")
    while not stopping:
        cur.execute(select, (now(), BATCH))
        rows = cur.fetchall()
        if not rows:
            conn.commit()
            break
        cur.execute("DELETE FROM delayed_jobs WHERE id = ANY(%s)", ([row[0] for row in rows],))
        for _, handler in rows:
            perform(handler)
        conn.commit()
    conn.close()


def drain_sqlite(url: str) -> None:
    import sqlite3

    conn = sqlite3.connect(make_url(url).database, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    select = ("SELECT id, handler FROM delayed_jobs WHERE run_at <= ? AND failed_at IS NULL "
              "AND locked_at IS NULL ORDER BY priority, run_at LIMIT ?")
    while not stopping:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(select, (now().isoformat(sep=" "), BATCH)).fetchall()
        if not rows:
            conn.execute("COMMIT")
            break
        conn.execute(f"DELETE FROM delayed_jobs WHERE id IN ({', '.join(['?'] * len(rows))})",
                     [row[0] for row in rows])
        for _, handler in rows:
            perform(handler)
        conn.execute("COMMIT")
    conn.close()


def main() -> None:
    backend, url = sys.argv[1], sys.argv[2]
    {"sqlite": drain_sqlite, "postgresql": drain_postgresql}.get(backend, drain_mariadb)(url)


if __name__ == "__main__":
    main()
