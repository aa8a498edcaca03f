"""The enqueue path on the driver's cursor (``store.driver``), on every dialect.

Single and bulk enqueues without a caller's connection skip SQLAlchemy's
``Connection``; they must write the very rows the ``Connection`` path writes,
in one transaction, retried and reported the same way.
"""
from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from dj_daemon.errors import DatabaseError
from dj_daemon.job import NewJob, utcnow
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Store, driver, mysql

TRICKY = ['{"target":"tests.jobs:noop","args":["quote \' dq \\" bs \\\\ nl \\n"],"kwargs":{}}',
          '{"target":"tests.jobs:noop","args":["é 中文 😀"],"kwargs":{}}', "x" * 5000, ""]


#: One time for every call of ``jobs_of`` (computed per call, a second boundary between two
#: calls made the expected run_at differ from the stored one)
LATER = utcnow().replace(microsecond=123456) + timedelta(hours=1)


def jobs_of(token: str) -> list[NewJob]:
    return [NewJob(handler=h + token, name="n", queue=q, priority=p, run_at=r)
            for h, q, p, r in zip(TRICKY, [None, "q'ueue", "mail", None], [-5, 0, 7, 2**31 - 1],
                                  [None, LATER, None, LATER])]


def rows(store: Store) -> list[dict]:
    columns = [c for c in dj.c if c.name != "id"]
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(*columns).order_by(dj.c.id)).mappings()]


def test_one_and_many_write_what_a_callers_transaction_writes(store: Store) -> None:
    with store.engine.begin() as conn:
        store.insert(jobs_of("a"), conn)  # through SQLAlchemy's Connection
    store.insert(jobs_of("b"))            # many: the dialect's bulk statement or the driver's executemany
    for job in jobs_of("c"):
        store.insert([job])               # one by one
    got = rows(store)
    assert len(got) == 12
    for row in got:
        assert row["created_at"] == row["updated_at"] and row["attempts"] == 0
        assert (row["locked_at"], row["locked_by"], row["failed_at"], row["last_error"], row["strand"]) == (None,) * 5
    by_path = [[{k: v for k, v in row.items() if k not in ("handler", "created_at", "updated_at", "run_at")}
                | {"handler": row["handler"][:-1], "due_now": row["run_at"] == row["created_at"]}
                for row in got[i:i + 4]] for i in (0, 4, 8)]
    assert by_path[0] == by_path[1] == by_path[2]
    assert [row["handler"][:-1] for row in got[:4]] == TRICKY
    assert [row["run_at"] for row in got[1::4]] == [jobs_of("")[1].run_at] * 3


def test_single_insert_returns_the_new_id(store: Store) -> None:
    ids = [store.insert([job])[0] for job in jobs_of("x")]
    with store.engine.connect() as conn:
        assert ids == list(conn.execute(select(dj.c.id).order_by(dj.c.id)).scalars())


def test_a_failing_bulk_insert_leaves_nothing_and_the_pool_clean(store: Store) -> None:
    bad = [NewJob(handler="ok", name="n"), NewJob(handler=None, name="n"), NewJob(handler="ok", name="n")]
    with pytest.raises(DatabaseError, match="database error on"):
        store.insert(bad)
    with pytest.raises(DatabaseError):
        store.insert(bad[1:2])
    assert rows(store) == []
    store.insert(bad[:1])  # the connections went back without an open transaction
    store.insert([bad[0], bad[2]])
    assert len(rows(store)) == 3


def test_bulk_documents_are_cut_and_keep_order(store: Store, monkeypatch) -> None:
    monkeypatch.setattr(mysql, "JSON_BATCH_CHARS", 300)  # several statements where JSON_TABLE serves
    store.insert([NewJob(handler=f"{i:03d}" * 30, name="n") for i in range(20)])
    assert [row["handler"][:3] for row in rows(store)] == [f"{i:03d}" for i in range(20)]


def test_retryable_errors_are_retried_and_others_reported(store: Store, monkeypatch) -> None:
    """A deadlock (MySQL 1213) raised by the driver is retried from the start; other errors
    become one-line ``DatabaseError`` s."""
    error = store.engine.dialect.loaded_dbapi.OperationalError
    calls = []
    run = driver.PlainInsert.run

    def deadlock_once(self, cursor, new_rows):
        calls.append(len(new_rows))
        if len(calls) == 1:
            run(self, cursor, new_rows)  # written, then rolled back by the failure
            raise error(1213, "Deadlock found when trying to get lock")
        return run(self, cursor, new_rows)

    monkeypatch.setattr(driver.PlainInsert, "run", deadlock_once)
    store.insert(jobs_of("d"))
    assert calls == [4, 4] and len(rows(store)) == 4

    def broken(self, cursor, new_rows):
        raise error(9999, "something else\nwith a second line")

    monkeypatch.setattr(driver.PlainInsert, "run", broken)
    with pytest.raises(DatabaseError, match=r"^database error on .*: something else$"):
        store.insert(jobs_of("e")[:1])
    assert len(rows(store)) == 4


def test_a_connection_found_dead_is_replaced(store: Store) -> None:
    store.insert(jobs_of("f")[:1])
    kept = store._cursors._kept  # the connection kept between enqueues
    kept.dbapi_connection.close()  # as if the server or the network had dropped it meanwhile
    store.insert(jobs_of("g")[:1])
    assert store._cursors._kept is not kept
    pooled = store.engine.raw_connection()
    pooled.dbapi_connection.close()  # one in the pool, for a thread that finds the kept one lent
    pooled.close()
    store._cursors.KEEP = 0  # back to the pool at once: the next enqueue checks one out
    store.insert(jobs_of("h"))
    store.insert(jobs_of("i")[:1])
    assert len(rows(store)) == 7


def test_threads_share_the_kept_connection_or_use_the_pool(store: Store) -> None:
    errors: list[BaseException] = []

    def enqueue(token: str) -> None:
        try:
            for i in range(20):
                store.insert([NewJob(handler=f"{token}{i}", name="n")])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=enqueue, args=(t,)) for t in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(rows(store)) == 80
    assert store.engine.pool.checkedout() == 1  # only the kept one stays out
    store._cursors.close()
    assert store.engine.pool.checkedout() == 0


# in-process workers of earlier tests leave their guard threads (daemon threads) in the test process;
# the child only enqueues and _exits, which is what this checks, so 3.12's general warning says nothing here
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_enqueues_on_connections_of_its_own(store: Store) -> None:
    store.insert(jobs_of("p")[:1])  # the parent keeps a connection
    pid = os.fork()
    if pid == 0:  # the child, as a daemon's worker or a prefork server's would
        code = 1
        try:
            store.forget_connections()
            store.insert(jobs_of("c"))
            store.insert(jobs_of("c")[:1])
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    store.insert(jobs_of("p")[:1])  # the parent's kept connection was left alone
    assert len(rows(store)) == 7


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)  # the MySQL driver's batching alone
def test_mysql_sends_many_rows_as_one_statement(store: Store) -> None:
    """With JSON_TABLE (MariaDB 10.6+) and with executemany, which PyMySQL turns into multi-row
    INSERTs only when every value is a bare parameter: never one INSERT per row."""
    new_rows = [NewJob(handler=f"h{i}", name="n").params(utcnow()) for i in range(500)]
    plain = store._plain_insert
    paths = [plain, driver.PlainInsert(store.engine.dialect, None)]
    dialect = store.engine.dialect
    assert (plain.bulk is not None) is (dialect.is_mariadb and dialect.server_version_info >= (10, 6))

    def inserts(cursor) -> int:
        cursor.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Com_insert', 'Com_insert_select')")
        return sum(int(value) for _, value in cursor.fetchall())

    for path in paths:
        def work(cursor, path=path) -> int:
            before = inserts(cursor)
            path.run(cursor, new_rows)
            return inserts(cursor) - before
        assert store._cursors.run(work) == 1
    assert len(rows(store)) == 1000


@pytest.mark.parametrize("paramstyle", ["qmark", "named"])
def test_values_are_converted_as_sqlalchemy_would_once_each(paramstyle) -> None:
    """Positional or named, a DateTime bound three times (``now``) is formatted once, by
    SQLAlchemy's own processor (here SQLite's string format)."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    dialect = sqlite_dialect.dialect(paramstyle=paramstyle)
    compiled = driver.PlainInsert(dialect, None).one
    now = utcnow().replace(microsecond=0)
    values = compiled.params(NewJob(handler="h", name="n").params(now))
    text = now.strftime("%Y-%m-%d %H:%M:%S.000000")
    got = list(values.values()) if isinstance(values, dict) else values
    texts = [value for value in got if value == text]
    assert len(texts) == (3 if paramstyle == "qmark" else 2)  # run_at and now (twice when positional)
    assert len({id(value) for value in texts}) == 1 and "h" in got and now not in got
