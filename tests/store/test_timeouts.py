"""A store opened with a ``timeout`` (the supervisor's) waits no longer on the database.

Each dialect bounds what its driver can: MySQL connects, reads and writes
(PyMySQL's timeouts), PostgreSQL connects, statements on the server and the
wait for their answers, SQLite waits for another writer. And a transaction whose statement timed out is not tried
again: the driver reports a timeout as a lost connection, which the store
otherwise retries at once, waiting the whole timeout again.
"""
from __future__ import annotations

import signal
import sqlite3
from dataclasses import replace
from typing import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dj_daemon.config import Config
from dj_daemon.errors import DatabaseError
from dj_daemon.store import Filters, open_store
from tests.conftest import SERVERS
from tests.faults.test_db_outage import relay  # noqa: F401  (the fixture)

GUARD_S = 15  # far below the drivers' own limits (120 s, 30 s): a test that waits that long fails


@pytest.fixture(autouse=True)
def guard() -> Iterator[None]:
    """Fail the test, instead of waiting, if a bounded wait is not bounded."""
    def expire(signum, frame):
        raise AssertionError(f"still waiting on the database after {GUARD_S}s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(GUARD_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_statements_time_out_once_when_the_server_hangs(config: Config, store, relay) -> None:  # noqa: F811
    """PyMySQL's read timeout; on PostgreSQL the wait for the answer (``postgresql.answering_connection``)."""
    relayed = make_url(config.url).set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    bounded = open_store(replace(config, url=relayed), timeout=0.5)
    try:
        assert bounded.counts()["waiting"] == 0  # a pooled connection, through the relay
        relay.freeze()
        with pytest.raises(DatabaseError, match="timed out|no answer from the server in 0.5 s") as hung:
            bounded.counts()
        assert hung.value.__cause__.connection_invalidated, "a connection owed an answer went back to the pool"
        assert relay.unanswered == 0, "the timed-out transaction was tried again on a new connection"
        with pytest.raises(DatabaseError, match="timed out|timeout expired"):
            bounded.has_ready(Filters())  # the poll's own connection: its connect times out
        assert relay.unanswered == 1
        relay.thaw()
        assert bounded.counts()["waiting"] == 0
    finally:
        bounded.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_waits_for_another_writer_no_longer_than_the_timeout(config: Config, store) -> None:
    writer = sqlite3.connect(make_url(config.url).database, isolation_level=None)
    bounded = open_store(config, timeout=0.2)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseError, match="database is locked"):
            bounded.reserve("w", Filters())
        writer.execute("ROLLBACK")
        with bounded.engine.begin() as conn:  # the statements' own busy timeout too
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 200
    finally:
        writer.close()
        bounded.dispose()


@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_a_long_statement_is_given_up_on_the_servers(config: Config, store) -> None:
    """PyMySQL stops waiting for the answer; PostgreSQL cancels the statement itself."""
    bounded = open_store(config, timeout=0.5)
    sleep = "SELECT pg_sleep(5)" if store.engine.dialect.name == "postgresql" else "SELECT SLEEP(5)"
    try:
        with pytest.raises(DatabaseError, match="timed out|statement timeout"):
            bounded.transaction(lambda conn: conn.execute(text(sleep)))
    finally:
        bounded.dispose()
