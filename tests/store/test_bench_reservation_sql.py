"""The bench's copy of the reservation's search (``bench.sections.reservation_sql``), which its
backlog section EXPLAINs on a million rows: the statement the store sends, values inlined.

A stand-in connection served here once, and broke unnoticed when the reservation first read
the stored priorities through it, then again when its statements went to the driver's cursor.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import text

from bench.sections import reservation_sql
from dj_daemon.store import Filters, Store

from .test_contract import new

pytestmark = pytest.mark.parametrize("db_url", ["mysql"], indirect=True)  # the backlog section's server


def test_it_is_the_reservations_first_search_with_its_values_inlined(store: Store, db_url: str) -> None:
    store.insert([new(token="a", priority=3), new(token="b", priority=5)])
    sql = reservation_sql(SimpleNamespace(url=db_url))
    assert sql.startswith("SELECT delayed_jobs.id") and "ORDER BY delayed_jobs.priority" in sql
    assert "%s" not in sql and "DISTINCT" not in sql
    with store.engine.connect() as conn:
        assert conn.execute(text(sql)).scalars().all() == [job.id for job in store.jobs()]  # runs as it is
        assert len(conn.execute(text("EXPLAIN " + sql)).all()) >= 1
    assert [job.locked_by for job in store.jobs()] == [None, None]  # its reservation was rolled back
    assert len(store.reserve("w", Filters(), limit=2).jobs) == 2
