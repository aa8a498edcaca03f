"""Jobs scheduled for later and jobs failed for good, in numbers: what the ready queries must keep
(order by priority, run_at and id; strands; kept failures, retry, delete) and what they may read
(due rows, and a bounded few more: "Stored rows" in docs/performance.md), on every dialect.

Rows read are counted the way each server tells them, deterministically: MariaDB's session
``Handler_read%`` and ``Handler_icp_attempts`` counters (rows its index condition pushdown looked
at and dropped are not in ``Handler_read%``), SQLite's virtual machine steps
(``set_progress_handler``), and PostgreSQL's ``EXPLAIN (ANALYZE)`` rows, kept and filtered out,
of every plan node.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine import Connection

from dj_daemon.job import NewJob, utcnow
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Filters, Store

HANDLER = '{"target":"tests.jobs:noop","args":[],"kwargs":{}}'


def stored(store: Store, count: int, run_at: datetime, *, failed: bool = False, priorities: int = 3,
           lowest: int = 0) -> None:
    """``count`` rows at ``run_at`` (plus a microsecond each), ``priorities`` priorities from
    ``lowest`` up, failed for good if asked, in one executemany."""
    now = utcnow()
    rows = [{"priority": lowest + i % priorities, "attempts": 25 if failed else 0, "handler": HANDLER,
             "run_at": run_at + timedelta(microseconds=i), "failed_at": now if failed else None,
             "created_at": now, "updated_at": now} for i in range(count)]
    with store.engine.begin() as conn:
        conn.execute(insert(dj), rows)


def new(priority: int = 0, run_at: datetime | None = None) -> NewJob:
    return NewJob(handler=HANDLER, name="tests.jobs:noop", priority=priority, run_at=run_at)


def in_strand(store: Store, strand: str, priority: int, run_at: datetime) -> int:
    """A job of ``strand`` (as a tracked job's row has; its state row is not needed here)."""
    job_id, = store.insert([new(priority, run_at)])
    with store.engine.begin() as conn:
        conn.execute(update(dj).where(dj.c.id == job_id).values(strand=strand))
    return job_id


def reserved_ids(store: Store, limit: int = 1) -> list[int]:
    return [job.id for job in store.reserve("w:1", Filters(), limit=limit).jobs]


@pytest.fixture
def crowded(store: Store) -> Store:
    """A store holding 600 rows for tomorrow and 600 failed, at priorities 0..2 (and -3..2 failed)."""
    stored(store, 600, utcnow() + timedelta(days=1))
    stored(store, 600, utcnow() - timedelta(days=1), failed=True, priorities=6, lowest=-3)
    return store


def test_priority_then_run_at_then_id_among_future_and_failed_rows(crowded: Store) -> None:
    now = utcnow()
    a, = crowded.insert([new(2, now - timedelta(minutes=1))])
    b, = crowded.insert([new(0, now - timedelta(minutes=5))])
    c, = crowded.insert([new(0, now - timedelta(minutes=9))])
    d, = crowded.insert([new(-7, now - timedelta(seconds=1))])  # a priority that no other row has
    e, = crowded.insert([new(2, now - timedelta(minutes=1))])   # a's run_at: id decides
    f, = crowded.insert([new(1, now - timedelta(hours=2))])
    assert [reserved_ids(crowded)[0] for _ in range(6)] == [d, c, b, f, a, e]
    assert reserved_ids(crowded, limit=10) == [] and not crowded.has_ready(Filters())


def test_a_batch_comes_in_order(crowded: Store) -> None:
    now = utcnow()
    ids = [crowded.insert([new(p, now - timedelta(seconds=s))])[0] for p, s in [(1, 5), (0, 1), (5, 9), (0, 3)]]
    assert reserved_ids(crowded, limit=10) == [ids[3], ids[1], ids[0], ids[2]]


def test_priorities_new_since_the_last_reservation_keep_their_place(crowded: Store) -> None:
    """MariaDB lists the stored priorities every few seconds: jobs of a priority stored in between
    are found all the same, in order, below, between and above the listed ones."""
    crowded.insert([new(1)])
    assert len(reserved_ids(crowded)) == 1  # lists 0, 1, 2 and the failed rows' -3..-1
    ids = [crowded.insert([new(p)])[0] for p in (50, 1, -40, 7)]
    assert reserved_ids(crowded, limit=10) == [ids[2], ids[1], ids[3], ids[0]]


def test_a_job_becomes_ready_at_its_run_at(crowded: Store) -> None:
    soon = utcnow() + timedelta(minutes=5)
    job_id, = crowded.insert([new(0, soon)])
    assert not crowded.has_ready(Filters()) and reserved_ids(crowded) == []
    crowded.clock = lambda: soon + timedelta(microseconds=1)  # tomorrow's 600 rows stay in the future
    assert crowded.has_ready(Filters()) and reserved_ids(crowded, limit=10) == [job_id]


def test_strands_run_in_id_order_past_future_and_failed_rows(crowded: Store) -> None:
    now = utcnow()
    held = in_strand(crowded, "t:1", 0, now + timedelta(hours=1))
    behind = in_strand(crowded, "t:1", -5, now - timedelta(hours=1))
    failed = in_strand(crowded, "t:2", 0, now - timedelta(hours=1))
    after_failed = in_strand(crowded, "t:2", 0, now - timedelta(minutes=1))
    with crowded.engine.begin() as conn:
        conn.execute(update(dj).where(dj.c.id == failed).values(failed_at=now))
    assert reserved_ids(crowded, limit=10) == [after_failed]  # a failed job holds no strand back
    assert reserved_ids(crowded, limit=10) == []               # behind waits for held, not yet due
    crowded.clock = lambda: now + timedelta(hours=1, seconds=1)
    assert reserved_ids(crowded) == [held]
    assert reserved_ids(crowded) == []                         # held is running
    crowded.complete(*crowded.reserve("x:1", Filters()).jobs)  # nothing else is ready meanwhile
    assert behind not in reserved_ids(crowded)


def test_failures_are_kept_retried_and_deleted(crowded: Store) -> None:
    job_id, = crowded.insert([new(4, utcnow() - timedelta(minutes=1))])
    job = crowded.reserve("w:1", Filters()).jobs[0]
    crowded.reschedule(job, 25, "boom", None)  # failed for good
    kept = crowded.get(job_id)
    assert kept.failed_at is not None and kept.last_error == "boom" and reserved_ids(crowded) == []
    assert crowded.retry(job_id).failed_at is None and reserved_ids(crowded) == [job_id]
    later, = crowded.insert([new(0, utcnow() + timedelta(days=2))])
    crowded.delete(later)
    assert crowded.jobs(failed=False, limit=10_000)[-1].id != later


# -- rows read --------------------------------------------------------------------------------

def rows_read(store: Store, conn: Connection, work: Callable[[], Any]) -> int:
    """Rows (MariaDB, PostgreSQL) or VM steps (SQLite) that ``work()`` costs in ``conn``."""
    name = conn.dialect.name
    if name == "mysql":
        conn.exec_driver_sql("FLUSH STATUS")
        work()
        status = conn.exec_driver_sql("SHOW SESSION STATUS WHERE Variable_name LIKE 'Handler_read%%' "
                                      "OR Variable_name = 'Handler_icp_attempts'").all()
        return sum(int(value) for _, value in status)
    if name == "sqlite":
        steps = [0]
        raw = conn.connection.dbapi_connection

        def tick() -> int:
            steps[0] += 1
            return 0
        raw.set_progress_handler(tick, 1)
        try:
            work()
        finally:
            raw.set_progress_handler(None, 1)
        return steps[0]
    return sum(explained_rows(conn, statement, parameters) for statement, parameters in selects_of(store, work))


def selects_of(store: Store, work: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The SELECTs ``work()`` sent, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, parameters))
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        work()
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    return sent


def explained_rows(conn: Connection, statement: str, parameters: Any) -> int:
    """PostgreSQL: rows every node of the plan returned or filtered out, over all its loops, plus
    the pages it touched (an index scan passes over entries its index condition drops without
    counting them as rows: they show as pages)."""
    plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters).scalar()
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]

    def walk(node: dict[str, Any]) -> Iterator[int]:
        loops = node.get("Actual Loops", 1)
        yield loops * (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                       + node.get("Rows Removed by Index Recheck", 0))
        for child in node.get("Plans", []):
            yield from walk(child)
    return sum(walk(top)) + top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)


#: Rows scheduled for later, and rows failed for good: what the bounded reads must not grow with.
MANY = 20_000
#: What a bounded poll or reservation of 100 may read here, in each dialect's measure; a walk
#: over the ``MANY`` future rows reads more (``test_the_bound_would_catch_a_full_walk``).
BOUND = {"mysql": 200, "postgresql": 60, "sqlite": 2_000}


def heap(store: Store, many: int) -> Store:
    """``many`` rows for tomorrow and ``many`` failed, at priorities 0..2; the servers' statistics
    fresh (SQLite's are left out, as in a database nobody ran ``ANALYZE`` on)."""
    stored(store, many, utcnow() + timedelta(days=1))
    stored(store, many, utcnow() - timedelta(days=1), failed=True)
    return fresh_statistics(store)


def fresh_statistics(store: Store) -> Store:
    """The servers' statistics made fresh, as their autovacuum or persistent statistics keep them;
    SQLite's left out, as in a database nobody ran ``ANALYZE`` on."""
    analyze = {"mysql": "ANALYZE TABLE delayed_jobs", "postgresql": "ANALYZE delayed_jobs"}
    if store.engine.dialect.name in analyze:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(analyze[store.engine.dialect.name])
    return store


@pytest.fixture
def heaped(store: Store) -> Store:
    return heap(store, MANY)


def test_idle_poll_and_reservation_read_a_bounded_few_rows(heaped: Store) -> None:
    """Nothing due: the poll and a reservation of 100 read a handful of rows, not 40,000. Then a
    backlog of 2,000 due jobs at priorities 1 and 2 behind one due at 0: a reservation of 10 reads
    about its 10 (and MariaDB's 20 candidates), not the backlog nor the future rows at 0."""
    bound = BOUND[heaped.engine.dialect.name]
    with heaped.engine.begin() as conn:
        heaped.lock_ready(conn, "w:1", Filters(), utcnow(), 1)  # MariaDB lists the priorities once
        assert rows_read(heaped, conn, lambda: heaped.poll_ready(conn, Filters()) is False) < bound
        got: list[Any] = []
        assert rows_read(heaped, conn, lambda: got.extend(heaped.lock_ready(conn, "w:1", Filters(), utcnow(), 100))
                         ) < bound and got == []
        conn.rollback()
    first, = heaped.insert([new(0, utcnow() - timedelta(seconds=1))])
    stored(heaped, 2_000, utcnow() - timedelta(hours=1), priorities=2, lowest=1)
    with heaped.engine.begin() as conn:
        assert rows_read(heaped, conn, lambda: heaped.poll_ready(conn, Filters())) < bound
        got = []
        assert rows_read(heaped, conn, lambda: got.extend(heaped.lock_ready(conn, "w:1", Filters(), utcnow(), 10))
                         ) < 3 * bound
        assert [job.id for job in got][0] == first and [job.priority for job in got] == [0] + [1] * 9
        conn.rollback()


def test_the_bound_would_catch_a_full_walk(heaped: Store) -> None:
    """The same measure of the plain predicate (no ``Due`` bound) walks the 20,000 future rows
    (here: MariaDB 40,001 reads, SQLite 80,016 steps, PostgreSQL 152 rows and pages, against 7,
    187 and 42 bounded): the bound above is not one any plan meets."""
    from dj_daemon.store import common

    with heaped.engine.begin() as conn:
        query = select(dj.c.id).where(common.ready(Filters())).order_by(*common.ORDER).limit(100)
        values = common.params(Filters(), utcnow())
        assert rows_read(heaped, conn, lambda: conn.execute(query, values).all()) > 2 * BOUND[conn.dialect.name]
        assert conn.execute(select(func.count()).select_from(dj)).scalar_one() == 2 * MANY


def test_an_older_table_gets_the_index_from_db_init(store: Store, subprocess_env: dict[str, str]) -> None:
    """A table made before ``ix_delayed_jobs_due`` existed: ``check`` names the missing index in one
    line, ``db init`` adds it (and again changes nothing), and the jobs are still there."""
    from tests.cli.test_delayed_job_cli import dj as run_cli

    job_id, = store.insert([new()])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_delayed_jobs_due" + (" ON delayed_jobs" if conn.dialect.name == "mysql"
                                                                 else ""))
    assert store.missing_indexes() == ["delayed_jobs.ix_delayed_jobs_due"]
    check = run_cli(subprocess_env, "check")
    hint = [line for line in check.stdout.splitlines() if line.startswith("missing index")]
    assert check.returncode == 0 and hint == [
        'missing index delayed_jobs.ix_delayed_jobs_due: run `delayed_job db init` to add it '
        '(docs/performance.md, "Stored rows")']
    for _ in range(2):
        assert run_cli(subprocess_env, "db", "init").returncode == 0
        assert store.missing_indexes() == []
    assert "missing index" not in run_cli(subprocess_env, "check").stdout and reserved_ids(store) == [job_id]
