"""Which database errors no wait can fix, on every dialect: the store marks them ``permanent``
(``workoff`` then ends at once) and leaves an outage transient (waited out)."""
from __future__ import annotations

import socket
import uuid

import pytest
from sqlalchemy.engine import make_url

from dj_daemon.errors import DatabaseError
from dj_daemon.store import Filters, open_store
from tests.conftest import DIALECTS

#: The dialects with a server, credentials and a port to be down.
on_servers = pytest.mark.parametrize("db_url", [d for d in DIALECTS if d != "sqlite"], indirect=True)


def reserve_error(config, url: str) -> DatabaseError:
    store = open_store(config.replace(url=url))
    try:
        with pytest.raises(DatabaseError) as raised:
            store.reserve("testhost:1", Filters())
    finally:
        store.dispose()
    return raised.value


def free_port() -> int:
    with socket.socket() as probe:  # a port just freed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_database_without_tables_is_permanent(config) -> None:
    error = reserve_error(config, config.url)  # the fixture's database, no `db init`
    assert error.permanent and "delayed_job db init" in str(error)


def test_an_unknown_database_is_permanent(config) -> None:
    url = make_url(config.url)
    if url.get_backend_name() == "sqlite":
        missing = url.set(database=f"{url.database}.missing/queue.sqlite3")  # no such folder
    else:
        missing = url.set(database=f"dj_missing_{uuid.uuid4().hex[:8]}")
    assert reserve_error(config, missing.render_as_string(hide_password=False)).permanent


@on_servers
def test_refused_credentials_are_permanent(config) -> None:
    url = make_url(config.url)
    wrong = url.set(username="dj_nobody", password="hunter2-secret")
    error = reserve_error(config, wrong.render_as_string(hide_password=False))
    assert error.permanent and "hunter2-secret" not in str(error)


@on_servers
def test_nothing_listening_is_transient(config) -> None:
    url = make_url(config.url)
    down = url.set(host="127.0.0.1", port=free_port())
    assert not reserve_error(config, down.render_as_string(hide_password=False)).permanent
