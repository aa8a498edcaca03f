"""The queue's counts (``Store.counts``, ``Store.queue_depths``): what they mean among future,
failed, running and due rows, how a count past its cap says so, and that with many stored rows
they read a bounded few ("Queue counts" in docs/performance.md), on every dialect."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from dj_daemon.job import utcnow
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Counts, Depths, Filters, Store
from dj_daemon.job import NewJob
from tests.store.test_stored_rows import fresh_statistics, heap, new, rows_read, stored


def queued(queue: str, priority: int, run_at: datetime) -> NewJob:
    return dataclasses.replace(new(priority, run_at), queue=queue)


@pytest.fixture
def mixed(store: Store) -> Store:
    """7 for tomorrow (queue a), 4 failed (queue b), 3 due of which 2 running (queue a), 5 due
    waiting (queue c, one of them at priority -2)."""
    now = utcnow()
    store.insert([queued("a", 0, now + timedelta(days=1)) for _ in range(7)])
    stored(store, 4, now - timedelta(days=1), failed=True)
    with store.engine.begin() as conn:
        conn.execute(update(dj).where(dj.c.failed_at.is_not(None)).values(queue="b"))
    store.insert([queued("a", 1, now - timedelta(minutes=3)) for _ in range(3)])
    assert len(store.reserve("w:1", Filters(queues=("a",)), limit=2).jobs) == 2
    store.insert([queued("c", 0, now - timedelta(minutes=m)) for m in (1, 2, 4, 5)])
    store.insert([queued("c", -2, now - timedelta(seconds=1))])
    return store


def test_counts_by_state_among_future_failed_running_and_due_rows(mixed: Store) -> None:
    counts = mixed.counts()
    assert counts == {"waiting": 7 + 1 + 5, "running": 2, "failed": 4} and counts.at_least == frozenset()
    assert [counts.shown(name) for name in ("waiting", "running", "failed")] == ["13", "2", "4"]


def test_queue_depths_count_due_waiting_rows_only(mixed: Store) -> None:
    depths = mixed.queue_depths()
    assert {queue: count for queue, (count, _) in depths.items()} == {"a": 1, "c": 5}
    oldest = depths["c"][1]
    assert oldest is not None and utcnow() - oldest > timedelta(minutes=5) and not depths.at_least
    assert depths.shown_total() == "6"


def test_a_count_past_its_cap_is_a_lower_bound_and_says_so(mixed: Store) -> None:
    counts = mixed.counts(cap=3)
    assert counts == {"waiting": 3, "running": 2, "failed": 3} and counts.at_least == {"waiting", "failed"}
    assert (counts.shown("waiting"), counts.shown("running"), counts.shown("failed")) == ("3+", "2", "3+")
    exact = mixed.counts(cap=13)
    assert exact == {"waiting": 13, "running": 2, "failed": 4} and not exact.at_least
    assert mixed.counts(cap=12).at_least == {"waiting"}


def test_queue_depths_past_their_cap_read_the_best_rows_first(mixed: Store) -> None:
    """Past the cap, the rows read are the first in the reservation's order (priority -2, then
    the due ones at 0 oldest first), and the reading says it is a lower bound."""
    depths = mixed.queue_depths(cap=2)
    assert isinstance(depths, Depths) and depths.at_least and depths.shown_total() == "2+"
    assert {queue: count for queue, (count, _) in depths.items()} == {"c": 3}


def test_an_empty_queue_counts_nothing(store: Store) -> None:
    assert store.counts() == {"waiting": 0, "running": 0, "failed": 0} and store.queue_depths() == {}


# -- rows read --------------------------------------------------------------------------------

#: Rows for tomorrow and failed rows; the cap the counts stop at.
MANY = 6_000
CAP = 500
#: What the capped counts may read here, in each dialect's measure: a few times the cap (each
#: count stops at it; measured: MariaDB 2,016 handler reads, PostgreSQL 2,052 rows and pages,
#: SQLite 8,584 VM steps); counting every row, as before, read 24,012, 12,207 and 258,124
#: (``test_the_bound_would_catch_a_full_count``).
BOUND = {"mysql": 5 * CAP, "postgresql": 5 * CAP, "sqlite": 40 * CAP}


@pytest.fixture
def heaped(store: Store) -> Store:
    """``MANY`` rows for tomorrow and ``MANY`` failed at priorities 0..2 (``heap``), 3 due."""
    store.insert([new(p, utcnow() - timedelta(seconds=1)) for p in (0, 1, 2)])
    return heap(store, MANY)


def test_counts_read_a_bounded_few_rows(heaped: Store) -> None:
    """With 12,000 stored rows, the counts capped at 500 read within a few times 500, and say that
    waiting and failed are at least 500; the due depths read their 3 rows."""
    bound = BOUND[heaped.engine.dialect.name]
    listed = heaped.engine.dialect.name == "mysql"
    from dj_daemon.store import counting

    with heaped.engine.begin() as conn:
        got: list[Counts] = []
        assert rows_read(heaped, conn, lambda: got.append(counting.counts(conn, listed, CAP))) < bound
        assert got[0] == {"waiting": CAP, "running": 0, "failed": CAP} and got[0].at_least == {"waiting", "failed"}
        depths: list[Depths] = []
        due = heaped._due.clause(conn)
        assert rows_read(heaped, conn, lambda: depths.append(counting.queue_depths(conn, due, utcnow(), CAP))
                         ) < bound // 4
        assert depths[0] == {"": (3, depths[0][""][1])} and not depths[0].at_least


def test_a_few_failed_among_many_later_rows_are_counted_exactly_reading_few(store: Store) -> None:
    """The usual table: many rows for later at one priority, and a few failed: the failed ones are
    counted exactly, reading about them alone (MariaDB: their range of ``ix_delayed_jobs_due``,
    12 reads; elsewhere the partial ``ix_delayed_jobs_failed``)."""
    from dj_daemon.store import counting

    stored(store, MANY, utcnow() + timedelta(days=1), priorities=1)
    stored(store, 5, utcnow() - timedelta(days=1), failed=True, priorities=1)
    fresh_statistics(store)
    listed = store.engine.dialect.name == "mysql"
    with store.engine.begin() as conn:
        query = counting._capped(counting._listed(conn, True), *counting.FAILED_ORDER) if listed else counting.FAILED
        found: list[int] = []
        assert rows_read(store, conn, lambda: found.append(conn.execute(query, {"limit": CAP + 1}).scalar_one())
                         ) < 100 and found == [5]
    assert store.counts(cap=CAP) == {"waiting": CAP, "running": 0, "failed": 5}


def test_the_bound_would_catch_a_full_count(heaped: Store) -> None:
    """The same measure of the former grouped count of every row reads more than the bound."""
    state = (dj.c.failed_at.is_not(None), dj.c.locked_by.is_not(None))
    query = select(*state, func.count()).group_by(*state)
    with heaped.engine.begin() as conn:
        assert rows_read(heaped, conn, lambda: conn.execute(query).all()) > BOUND[conn.dialect.name]


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)  # the listed ranges are MariaDB's
def test_mariadb_reads_its_listed_ranges_however_many_rows(store: Store) -> None:
    """From about 100k stored rows on, MariaDB's optimizer walked ``ix_delayed_jobs_due`` from its
    start for the failed count unless asked for the index's order: every row of priority 0 that is
    not failed came first (here 33,437 handler reads for a count capped at 50; at 1M for later and
    1M failed, 45 ms). In order, each count reads about its cap."""
    from dj_daemon.store import counting

    stored(store, 100_000, utcnow() + timedelta(days=1))
    stored(store, 100_000, utcnow() - timedelta(days=1), failed=True)
    fresh_statistics(store)
    with store.engine.begin() as conn:
        got: list[Counts] = []
        assert rows_read(store, conn, lambda: got.append(counting.counts(conn, True, 50))) < 1_000
        assert got[0] == {"waiting": 50, "running": 0, "failed": 50} and got[0].at_least == {"waiting", "failed"}
