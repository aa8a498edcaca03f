"""A forked child that drops its parent's store must leave the parent's connections alone.

The supervisor forks its workers while its store holds connections: the
pooled ones, the autocommit one of the idle poll (``has_ready``) and the one
the enqueue path keeps (``driver.Cursors``). If the child lets any of them be
closed (by the garbage collector through SQLAlchemy's finalizers), the driver
says goodbye to the server (MySQL's COM_QUIT) over the socket the parent
still uses, and the parent's next statement fails with "Lost connection".
The server's own list of sessions shows whether each one survived.
"""
from __future__ import annotations

import gc
import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dj_daemon.job import NewJob
from dj_daemon.store import Filters, Store
from tests.conftest import SERVERS


def sessions(store: Store) -> set[int]:
    """The server's connection ids on the store's database, as seen from another connection."""
    admin = create_engine(store.engine.url)
    try:
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                mine = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                listed = "SELECT pid FROM pg_stat_activity WHERE datname = :db"
            else:
                mine = conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()
                listed = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :db"
            ids = conn.execute(text(listed), {"db": make_url(store.engine.url).database}).scalars()
            return {int(i) for i in ids} - {mine}
    finally:
        admin.dispose()


def use_every_connection(store: Store) -> None:
    store.insert([NewJob(handler="h", name="n")])  # the enqueue path's kept connection
    store.counts()  # a pooled connection, checked in again
    store.has_ready(Filters())  # the poll's autocommit connection


# threads other tests leave in this process (relays, guard threads) do nothing in the child, which
# only forgets the store and _exits: 3.12's general warning about forking them says nothing here
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_a_child_forgetting_the_store_leaves_every_parent_session_open(store: Store) -> None:
    use_every_connection(store)
    before = sessions(store)
    assert len(before) == 3, before
    pid = os.fork()
    if pid == 0:  # as the supervisor's child does before it opens a store of its own
        code = 1
        try:
            store.forget_connections()
            gc.collect()
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    assert sessions(store) == before, "the child closed a connection of its parent's"
    use_every_connection(store)  # and the parent goes on with the very same sessions, unharmed
    assert sessions(store) == before
