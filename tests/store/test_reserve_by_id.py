"""MariaDB's two-step reservation (``common.reserve_by_id``), raced with real second connections.

A plain read finds the best ready ids; a locking read by id then takes those
still ready. These tests hold rows locked, or change them, from another
connection between or around the two steps, and check that the worker gets
exactly the best rows nobody else holds, in priority order.
"""
from __future__ import annotations

from typing import Callable, Iterator, TypeVar

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.engine import Connection

from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Filters, Store, common

from .test_contract import new

pytestmark = pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
T = TypeVar("T")


@pytest.fixture
def other(store: Store) -> Iterator[Connection]:
    """A second connection in an open transaction (another worker, mid-reservation)."""
    with store.engine.connect() as conn:
        conn.begin()
        yield conn
        conn.rollback()


def insert(store: Store, jobs: list) -> list[int]:
    """One by one: ``Store.insert`` returns the id of a single job."""
    return [store.insert([job])[0] for job in jobs]


def hold(conn: Connection, ids: list[int]) -> None:
    """Row-lock ``ids`` (and only those: by primary key) in ``conn``'s transaction, as a worker
    that has not committed yet."""
    locked = conn.execute(select(dj.c.id).with_hint(dj, "FORCE INDEX (PRIMARY)").where(dj.c.id.in_(ids))
                          .with_for_update()).scalars()
    assert sorted(locked) == sorted(ids)


def free(conn: Connection) -> list[int]:
    """The ids nobody holds, seen from ``conn``."""
    ids = list(conn.execute(select(dj.c.id).with_for_update(skip_locked=True)).scalars())
    conn.rollback()
    return sorted(ids)


def test_the_server_reserves_in_two_steps(store: Store) -> None:
    assert store._dialect.LOCK_BY_ID and store.skip_locked


def test_candidates_held_by_another_are_skipped_for_the_next_best(store: Store, other: Connection) -> None:
    ids = insert(store, [new(priority=p, token=str(i)) for i, p in enumerate([3, 0, 1, 2, 4, 5])])
    by_priority = [ids[1], ids[2], ids[3], ids[0], ids[4], ids[5]]
    hold(other, [by_priority[0], by_priority[2], by_priority[3]])
    got = store.reserve("w", Filters(), limit=3).jobs  # three slices of the six candidates: 3, 2, 1
    assert [job.id for job in got] == [by_priority[1], by_priority[4], by_priority[5]]


def sent_by(store: Store, action: Callable[[], T]) -> tuple[T, list[str]]:
    """``action()``'s result, and the statements it sent."""
    statements: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    try:
        return action(), statements
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)


def one_step_reads(statements: list[str]) -> list[str]:
    """The one-step locking reads (``common.reserve_locking``) among ``statements``."""
    return [s for s in statements if s.startswith("SELECT") and "FOR UPDATE" in s and "ORDER BY delayed_jobs.priority" in s]


def test_every_candidate_held_reads_the_next_best_leaving_those_out(store: Store, other: Connection) -> None:
    """As -n 4 did in 41 reservations of 100: every candidate read was taken by the workers that
    read them first. The next best are read instead of the one-step locking read."""
    ids = insert(store, [new(priority=p, token=str(i)) for i, p in enumerate([2, 0, 0, 1, 0, 3, 1])])
    by_priority = [ids[1], ids[2], ids[4], ids[3], ids[6], ids[0], ids[5]]
    hold(other, by_priority[:4])  # all of the 2 x limit candidates
    got, statements = sent_by(store, lambda: store.reserve("w", Filters(), limit=2).jobs)
    assert [job.id for job in got] == by_priority[4:6]
    assert one_step_reads(statements) == []


def test_candidates_held_through_every_further_read_fall_back_to_the_locking_read(
        store: Store, other: Connection) -> None:
    held = (common.FURTHER + 1) * common.CANDIDATES  # every candidate of every read, at limit 1
    ids = insert(store, [new(token=str(i)) for i in range(held + 1)])
    hold(other, ids[:held])
    got, statements = sent_by(store, lambda: store.reserve("w", Filters(), limit=1).jobs)
    assert [job.id for job in got] == [ids[held]]
    assert len(one_step_reads(statements)) == 1


def test_nothing_but_held_jobs_ready_reserves_nothing(store: Store, other: Connection) -> None:
    ids = insert(store, [new(token=str(i)) for i in range(3)])
    hold(other, ids)
    got, statements = sent_by(store, lambda: store.reserve("w", Filters(), limit=1).jobs)
    assert got == [] and one_step_reads(statements) == []
    with store.engine.connect() as conn:
        assert conn.execute(select(dj.c.id).where(dj.c.locked_by.is_not(None))).first() is None


def test_a_candidate_taken_between_the_two_steps_is_not_reserved(store: Store) -> None:
    """Another worker stamps and commits the best row right after our plain read: the locking
    read checks readiness again and leaves it out."""
    ids = insert(store, [new(token=str(i)) for i in range(3)])
    fired = []

    @event.listens_for(store.engine, "after_cursor_execute")
    def steal(conn, cursor, statement, parameters, context, executemany) -> None:
        if not fired and statement.lstrip().startswith("SELECT") and "FOR UPDATE" not in statement:
            fired.append(statement)
            with store.engine.begin() as thief:
                thief.execute(update(dj).where(dj.c.id == ids[0]).values(locked_by="thief", locked_at=dj.c.run_at))

    try:
        got = store.reserve("w", Filters(), limit=3).jobs
    finally:
        event.remove(store.engine, "after_cursor_execute", steal)
    assert fired, "the plain read ran"
    assert [job.id for job in got] == ids[1:]
    with store.engine.connect() as conn:
        owners = dict(conn.execute(select(dj.c.id, dj.c.locked_by)).all())
    assert owners == {ids[0]: "thief", ids[1]: "w", ids[2]: "w"}


def test_the_locking_step_holds_only_the_rows_it_returns(store: Store, other: Connection) -> None:
    """A locking read that scans holds every row it passes: a bare ``id IN (...) FOR UPDATE`` on a
    table this small did (see ``hold``). The lock step must lock by primary key."""
    ids = insert(store, [new(token=str(i)) for i in range(6)])
    with store.engine.connect() as conn:
        conn.begin()
        rows = conn.execute(common.lock_ready_of(Filters(), 2), common.by_ids(ids[2:4], **common.params(
            Filters(), store.clock()))).all()
        assert [row.id for row in rows] == ids[2:4]
        assert free(other) == ids[:2] + ids[4:]
        conn.rollback()


def test_nothing_ready_is_one_plain_read(store: Store) -> None:
    store.reserve("w", Filters())  # the first one also lists the stored priorities (``ListedPriorities``)
    got, statements = sent_by(store, lambda: store.reserve("w", Filters(), limit=5).jobs)
    assert got == []
    selects = [s for s in statements if s.lstrip().startswith("SELECT")]
    assert len(selects) == 1 and "FOR UPDATE" not in selects[0]
