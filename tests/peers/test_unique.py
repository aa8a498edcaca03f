"""Unique jobs (Oban's unique jobs, GoodJob's concurrency total_limit): a second enqueue of a key
that a job holds returns that job's id instead of inserting, race-free through the key table's
primary key, on SQLite, MariaDB and PostgreSQL."""
from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.errors import EnqueueError
from dj_daemon.schema import delayed_jobs as dj, unique_keys as uk
from dj_daemon.store import Filters, Store, open_store
from dj_daemon.worker import Worker
from tests.peers import jobs

PROCESSES = 8
ENQUEUES = 1000


def count(store: Store, table=dj) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _enqueue_many(config: Config, start, times: int, out) -> None:
    """In a child process: its own store, then ``times`` enqueues of one key as fast as it can."""
    queue = Queue(config, open_store(config))
    start.wait()
    out.put(sorted({queue.enqueue(jobs.noop, n, unique_key="the-key") for n in range(times)}))


def test_many_processes_enqueuing_one_key_leave_one_row(config, store) -> None:
    """8 processes enqueue the same key 1,000 times in all, at once: one row, one id for all."""
    ctx = multiprocessing.get_context("forkserver")  # not fork: this process may have threads
    ctx.set_forkserver_preload(["dj_daemon.api", "dj_daemon.store", "tests.peers.test_unique"])
    start, out = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_enqueue_many, args=(config, start, ENQUEUES // PROCESSES, out))
             for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    ids = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert count(store) == 1 and count(store, uk) == 1
    (only,) = [job.id for job in store.jobs()]
    assert ids == [[only]] * PROCESSES


def test_a_key_waiting_job_returns_its_id_then_is_free_once_started(config, store) -> None:
    """The default ``unique_while="waiting"``: a started job no longer holds its key."""
    queue = Queue(config, store)
    first = queue.enqueue(jobs.noop, 1, unique_key="k")
    assert queue.enqueue(jobs.noop, 2, unique_key="k") == first
    store.reserve("testhost:1", Filters())  # it runs now
    second = queue.enqueue(jobs.noop, 3, unique_key="k")
    assert second != first and count(store) == 2


def test_running_scope_holds_the_key_until_the_job_ends(config, store, tmp_path) -> None:
    """``unique_while="running"`` (the decorator's here): held while it runs too; its key row goes
    with its success, in the same transaction, so the next enqueue inserts."""
    queue = Queue(config, store)
    first = queue.enqueue_call(jobs.copy_dataset, (7,))
    assert queue.enqueue_call(jobs.copy_dataset, (7,)) == first
    assert queue.enqueue_call(jobs.copy_dataset, (8,)) != first  # another key
    store.reserve("testhost:1", Filters(), limit=10)
    assert queue.enqueue_call(jobs.copy_dataset, (7,)) == first  # running: still held
    store.release(store.jobs())
    Worker(config, store, name="testhost:2").run(exit_when_empty=True)
    assert count(store) == 0 and count(store, uk) == 0
    assert queue.enqueue_call(jobs.copy_dataset, (7,)) != first


def test_a_job_failed_for_good_frees_its_key(config, store) -> None:
    """Failed for good (kept with failed_at) holds no key, as Oban's default states: the same work
    can be enqueued again at once; its key row went with the failure."""
    queue = Queue(config, store)
    first = queue.enqueue("tests.peers.jobs:missing", unique_key="gone", unique_while="running")
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert store.get(first).failed_at is not None and count(store, uk) == 0
    assert queue.enqueue(jobs.noop, unique_key="gone") != first


def test_a_deleted_holder_or_an_expired_key_holds_nothing(config, store) -> None:
    """A key row that outlived its job (deleted by an operator) or its ``unique_for`` is taken over."""
    queue = Queue(config, store)
    first = queue.enqueue(jobs.noop, unique_key="op", unique_while="running")
    store.delete(first)
    second = queue.enqueue(jobs.noop, unique_key="op")
    assert second != first
    store.reserve("testhost:1", Filters(), limit=10)
    third = queue.enqueue(jobs.noop, unique_key="ttl", unique_for=60)
    assert queue.enqueue(jobs.noop, unique_key="ttl", unique_for=60) == third
    later = Queue(config, Store(store.engine, store._dialect, store.safe_url,
                                clock=lambda: store.clock() + timedelta(seconds=61)))
    assert later.enqueue(jobs.noop, unique_key="ttl") != third


def test_keys_inside_the_callers_transaction_roll_back_with_it(config, store) -> None:
    """With ``connection``, the job and its key are the caller's: rolled back, nothing holds the key."""
    queue = Queue(config, store)
    with store.engine.connect() as conn:
        with conn.begin() as tx:
            queue.enqueue(jobs.noop, unique_key="tx", connection=conn)
            tx.rollback()
    assert count(store) == 0 and count(store, uk) == 0
    assert queue.enqueue(jobs.noop, unique_key="tx") == store.jobs()[0].id


@pytest.mark.parametrize("options, message", [
    ({"unique_key": 5}, "unique_key must be non-empty text"),
    ({"unique_key": "k", "unique_while": "done"}, "unique_while must be one of waiting, running"),
    ({"unique_key": "k", "unique_for": "1h"}, "unique_for must be a positive number of seconds"),
    ({"unique_for": 5}, "unique_while and unique_for need a unique_key"),
])
def test_bad_unique_options_are_one_line_errors(config, store, options, message) -> None:
    with pytest.raises(EnqueueError, match=message):
        Queue(config, store).enqueue(jobs.noop, **options)
    assert count(store) == 0


def test_the_decorator_refuses_a_bad_scope_at_decoration() -> None:
    from dj_daemon import job
    with pytest.raises(EnqueueError, match="unique_while must be one of"):
        job(unique_key="k", unique_while="always")(jobs.noop)
