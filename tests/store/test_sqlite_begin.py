"""SQLite's ``BEGIN IMMEDIATE`` waits for another writer in short steps (``sqlite.begin_immediate``).

The other writer is a plain ``sqlite3`` connection on the same file holding the
write lock, as another process would.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from typing import Iterator

import pytest
from sqlalchemy import text

from dj_daemon.errors import DatabaseError
from dj_daemon.store import Filters, Store, sqlite

from .test_contract import new

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def writer(store: Store) -> Iterator[sqlite3.Connection]:
    """Another connection to the same file; ``BEGIN IMMEDIATE`` on it takes the write lock."""
    conn = sqlite3.connect(store.engine.url.database, isolation_level=None)
    yield conn
    conn.close()


def test_a_reservation_waits_for_the_writer_then_goes_on(store: Store, writer: sqlite3.Connection) -> None:
    store.insert([new(token="a"), new(token="b")])
    writer.execute("BEGIN IMMEDIATE")
    got: list = []
    reserving = threading.Thread(target=lambda: got.append(store.reserve("w", Filters(), limit=5)))
    reserving.start()
    reserving.join(0.3)
    assert reserving.is_alive() and not got, "the reservation waits while the lock is held"
    writer.execute("COMMIT")
    reserving.join(10)
    assert len(got[0].jobs) == 2


def test_the_transaction_keeps_the_busy_timeout(store: Store) -> None:
    """Only BEGIN waits in steps; the statements after it (and single-statement enqueues on the
    same connection) keep SQLite's busy timeout."""
    with store.engine.begin() as conn:
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == sqlite.BUSY_TIMEOUT_MS


def test_a_lock_held_past_the_timeout_is_a_one_line_error(store: Store, writer: sqlite3.Connection,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 300)
    writer.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(DatabaseError, match=r"^database error on .*: database is locked$"):
        store.reserve("w", Filters())
    assert time.monotonic() - started >= 0.3
