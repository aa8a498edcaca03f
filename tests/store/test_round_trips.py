"""PostgreSQL's pickup path in round trips, counted by a proxy between the store and the server
(``bench.proxy``): an enqueue and a reservation are one each, run in autocommit
(``store.postgresql.AUTOCOMMIT``, ``reserve_at_once``), where psycopg's own BEGIN and COMMIT
made them three and four. Not timed: counted."""
from __future__ import annotations

import pytest

from bench.proxy import CountingProxy, round_trips
from dj_daemon.job import NewJob
from dj_daemon.store import Filters, Store, open_store

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def test_an_enqueue_and_a_reservation_are_one_round_trip_each(config, store: Store) -> None:
    proxy = CountingProxy(config.url)
    proxied = open_store(config.replace(url=proxy.url))
    try:
        proxied.insert([NewJob(handler="warm", name="n")])  # the connection's own set-up first
        proxied.complete(*proxied.reserve("t:1", Filters()).jobs)

        def trips(operation) -> int:
            before = proxy.snapshot()
            operation()
            return round_trips(proxy.snapshot() - before)

        assert trips(lambda: proxied.insert([NewJob(handler="one", name="n")])) == 1
        reserved: list = []
        assert trips(lambda: reserved.extend(proxied.reserve("t:1", Filters()).jobs)) == 1
        assert [job.handler for job in reserved] == ["one"] and reserved[0].locked_by == "t:1"
        assert trips(lambda: proxied.reserve("t:1", Filters())) == 1  # nothing ready: one all the same
    finally:
        proxied.dispose()
        proxy.close()
