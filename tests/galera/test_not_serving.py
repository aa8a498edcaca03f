"""A Galera node that is up but will not serve (``wsrep_reject_queries``, as out of the primary
component or still joining) is passed over like a dead one, on a connection in use and on a new one."""
from __future__ import annotations

from typing import Callable, Iterator

import pymysql
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dj_daemon.api import Queue
from dj_daemon.store import Filters, Store, open_store
from tests.faults.conftest import wait_until
from tests.galera.conftest import Cluster


def served_by(store: Store) -> int:
    """The client port of the node that answers ``store``'s next transaction."""
    return store.transaction(lambda conn: conn.execute(text("SELECT @@port")).scalar_one())


def set_reject_queries(url: str, value: str) -> None:
    """Straight through the driver: SQLAlchemy's first connect sends a ROLLBACK, which such a
    node refuses too."""
    server = make_url(url)
    connection = pymysql.connect(host=server.host, port=server.port, user=server.username,
                                 password=server.password or "")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET GLOBAL wsrep_reject_queries = {value}")
    finally:
        connection.close()


@pytest.fixture
def refusing(galera_nodes: list[str]) -> Iterator[Callable[[str], None]]:
    """``refusing(url)`` makes that node refuse client queries (1047) until the test ends."""
    refused: list[str] = []

    def refuse(url: str) -> None:
        refused.append(url)
        set_reject_queries(url, "ALL")

    yield refuse
    for url in refused:
        set_reject_queries(url, "NONE")


def test_a_node_that_refuses_queries_is_passed_over(cluster: Cluster, node_stores: list[Store], refusing) -> None:
    ports = [make_url(url).port for url in cluster.urls]
    Queue(cluster.config(0), node_stores[0]).enqueue_many(
        Queue(cluster.config(0), node_stores[0]).prepare("tests.jobs:noop") for _ in range(2))
    assert wait_until(lambda: len(node_stores[1].jobs()) == 2, timeout=10)
    second_first = open_store(cluster.config(1))  # node 2, then node 3.., then node 1
    try:
        assert served_by(second_first) == ports[1]
        refusing(cluster.urls[1])
        # the pooled connection to node 2 gets 1047: it is dropped, and the transaction retried elsewhere
        assert served_by(second_first) != ports[1]
        assert len(second_first.reserve("node2:1", Filters()).jobs) == 1
        assert second_first.has_ready(Filters())  # the idle poll's new connection passes node 2 over
    finally:
        second_first.dispose()
    fresh = open_store(cluster.config(1))  # a new connection: node 2 is asked first, refuses, is skipped
    try:
        assert served_by(fresh) != ports[1]
    finally:
        fresh.dispose()
