"""A worker's store reaches its first job on one connection (issue 17).

After the fork a worker opens a store of its own, registers its heartbeat row and reserves.
On MySQL the first reservation asked whether the server has ``SKIP LOCKED`` through a new
connection, while its transaction held the pool's only one: a second connect (TCP, the
handshake, the session's SETs) before each worker's first job.
"""
from __future__ import annotations

from sqlalchemy import event

from dj_daemon.config import Config
from dj_daemon.job import NewJob
from dj_daemon.store import Filters, Store, open_store


def test_a_new_workers_store_reaches_its_first_job_on_one_connection(config: Config, store: Store) -> None:
    store.insert([NewJob(handler='{"target": "tests.jobs:noop"}', name="n")])
    fresh = open_store(config)  # as a worker opens its own after the fork
    connects: list[object] = []
    event.listen(fresh.engine, "connect", lambda dbapi_connection, record: connects.append(dbapi_connection))
    try:
        fresh.register_worker("testhost:1", "testhost", 1)
        jobs = fresh.reserve("testhost:1", Filters()).jobs
        assert len(jobs) == 1
        fresh.reserve("testhost:1", Filters(), finished=jobs)
    finally:
        fresh.dispose()
    assert len(connects) == 1, f"{len(connects)} connections to reach the first job"
