"""The store's contract, on every dialect (SQLite, MariaDB, PostgreSQL where available)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from dj_daemon.errors import UnknownJobError
from dj_daemon.job import NewJob, utcnow
from dj_daemon.schema import delayed_jobs as dj, workers as wk
from dj_daemon.store import Filters, Store, open_store


def new(priority: int = 0, queue: str | None = None, run_at=None, token: str = "x") -> NewJob:
    return NewJob(handler=f'{{"target":"tests.jobs:noop","args":[],"kwargs":{{}},"t":"{token}"}}',
                  name="tests.jobs:noop", queue=queue, priority=priority, run_at=run_at)


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(dj)).scalar_one()


def test_db_init_is_idempotent(store: Store, config) -> None:
    store.create_schema()
    open_store(config).create_schema()
    assert count(store) == 0


def test_reserve_orders_by_priority_then_run_at(store: Store) -> None:
    now = utcnow()
    ids = store.insert([new(5, run_at=now - timedelta(seconds=30))])
    ids += store.insert([new(1, run_at=now - timedelta(seconds=10))])
    ids += store.insert([new(1, run_at=now - timedelta(seconds=20))])
    order = [store.reserve("w", Filters()).jobs[0].id for _ in range(3)]
    assert order == [ids[2], ids[1], ids[0]]
    assert store.reserve("w", Filters()).jobs == []


def test_reserve_respects_run_at_queues_and_priority_range(store: Store) -> None:
    store.insert([new(0, "mail", run_at=utcnow() + timedelta(hours=1))])
    low, = store.insert([new(10, "mail")])
    store.insert([new(0, "other")])
    high, = store.insert([new(-5, "mail")])
    assert store.reserve("w", Filters(queues=("mail",), min_priority=0)).jobs[0].id == low
    assert store.reserve("w", Filters(queues=("mail",), max_priority=0)).jobs[0].id == high
    assert store.reserve("w", Filters(queues=("mail",))).jobs == []


def test_reserve_stamps_lock_and_batches(store: Store) -> None:
    store.insert([new(token=str(i)) for i in range(5)])
    jobs = store.reserve("host:1", Filters(), limit=3).jobs
    assert len(jobs) == 3 and all(j.locked_by == "host:1" and j.locked_at for j in jobs)
    assert len(store.reserve("host:2", Filters(), limit=10).jobs) == 2


def test_stale_lock_is_reclaimed_fresh_lock_is_not(store: Store) -> None:
    job_id, = store.insert([new()])
    assert store.reserve("dead:1", Filters()).jobs[0].id == job_id
    assert store.reserve("w", Filters(max_run_time=60)).jobs == []
    with store.engine.begin() as conn:
        conn.execute(update(dj).values(locked_at=utcnow() - timedelta(seconds=61)))
    assert store.reserve("w", Filters(max_run_time=60)).jobs[0].id == job_id


def test_complete_deletes_only_own_lock(store: Store) -> None:
    job_id, = store.insert([new()])
    job = store.reserve("w", Filters()).jobs[0]
    store.complete(job.__class__(**{**job.__dict__, "locked_by": "someone-else"}))
    assert count(store) == 1
    store.complete(job)
    assert count(store) == 0


def test_reschedule_and_fail(store: Store) -> None:
    store.insert([new()])
    job = store.reserve("w", Filters()).jobs[0]
    later = utcnow() + timedelta(minutes=5)
    store.reschedule(job, 1, "ValueError: boom", later)
    again = store.get(job.id)
    assert (again.attempts, again.locked_by, again.failed_at, again.last_error) == (1, None, None, "ValueError: boom")
    assert abs((again.run_at - later).total_seconds()) < 0.01
    with store.engine.begin() as conn:
        conn.execute(update(dj).values(run_at=utcnow() - timedelta(seconds=1)))
    job = store.reserve("w", Filters()).jobs[0]
    store.reschedule(job, 2, "ValueError: boom again", None)
    failed = store.get(job.id)
    assert failed.failed_at is not None and failed.attempts == 2 and failed.state == "failed"
    assert store.reserve("w", Filters()).jobs == []


def test_worker_gone_releases_its_locks_counting_an_attempt(store: Store) -> None:
    store.insert([new(), new(), new()])
    store.register_worker("dead:9", "dead", 9)
    store.reserve("dead:9", Filters(), limit=2).jobs
    assert store.worker_gone("dead:9", "worker killed by SIGKILL") == 2
    assert store.workers() == []
    released = [j for j in store.jobs() if j.attempts == 1]
    assert len(released) == 2 and all(j.last_error == "worker killed by SIGKILL (attempt 1)" for j in released)
    assert len(store.reserve("w", Filters(), limit=5).jobs) == 3


def test_worker_gone_counts_an_attempt_only_for_the_job_it_had_started(store: Store) -> None:
    """A batch runs in order: of what its journal does not list as finished, the first was running;
    the rest was never started: unlocked, no attempt, no error."""
    store.insert([new(), new(), new()])
    finished, running, waiting = store.reserve("dead:9", Filters(), limit=3).jobs
    assert store.worker_gone("dead:9", "worker killed by SIGKILL", {finished.id}) == 2
    after = {j.id: j for j in store.jobs()}
    assert finished.id not in after
    assert (after[running.id].attempts, after[running.id].last_error) == (1, "worker killed by SIGKILL (attempt 1)")
    assert (after[waiting.id].attempts, after[waiting.id].last_error, after[waiting.id].locked_by) == (0, None, None)
    assert after[running.id].run_at == running.run_at  # a job cut short keeps its place in the queue
    assert len(store.reserve("w", Filters(), limit=5).jobs) == 2


def test_each_death_of_its_worker_counts_an_attempt_by_number(store: Store) -> None:
    [job_id] = store.insert([new()])
    for attempt in (1, 2):
        store.reserve(f"dead:{attempt}", Filters())
        store.worker_gone(f"dead:{attempt}", "worker killed by SIGSEGV", set())
    assert (store.get(job_id).attempts, store.get(job_id).last_error) == (2, "worker killed by SIGSEGV (attempt 2)")


def test_retry_delete_and_unknown_ids(store: Store) -> None:
    job_id, = store.insert([new()])
    job = store.reserve("w", Filters()).jobs[0]
    store.reschedule(job, 25, "boom", None)
    assert store.retry(job_id).failed_at is None
    assert store.reserve("w", Filters()).jobs[0].id == job_id
    with pytest.raises(UnknownJobError, match="running"):
        store.delete(job_id)
    for verb in (store.get, store.retry, store.delete):
        with pytest.raises(UnknownJobError, match="no job with id 424242"):
            verb(424242)


def test_insert_joins_callers_transaction(store: Store) -> None:
    with store.engine.connect() as conn:
        tx = conn.begin()
        store.insert([new()], conn)
        tx.rollback()
    assert count(store) == 0
    with store.engine.begin() as conn:
        store.insert([new(), new()], conn)
    assert count(store) == 2


def test_optimistic_fallback_reserves_each_job_once(store: Store) -> None:
    """The ``UPDATE ... LIMIT`` path used where the server has no SKIP LOCKED."""
    store._skip_locked = False
    store.insert([new(priority=p) for p in (3, 1, 2)])
    got = [store.reserve(f"w{i}", Filters()).jobs[0].priority for i in range(3)]
    assert got == [1, 2, 3]
    assert store.reserve("w9", Filters()).jobs == []


def test_clear_and_counts(store: Store) -> None:
    store.insert([new(queue="a"), new(queue="b"), new(queue="b")])
    store.reserve("w", Filters(queues=("a",))).jobs
    assert store.counts() == {"waiting": 2, "running": 1, "failed": 0}
    assert store.clear("b") == 2
    assert store.clear() == 0


def test_queue_depths_count_due_waiting_jobs_by_queue(store: Store) -> None:
    """Running, failed and future jobs are not waiting; the oldest due run_at gives the age."""
    now = store.clock()
    old = now - timedelta(minutes=5)
    store.insert([new(queue="mail", run_at=old), new(queue="mail"), new(), new(),
                  new(queue="mail", run_at=now + timedelta(hours=1)), new(queue="copy")])
    running = store.reserve("w", Filters(queues=("copy",))).jobs
    assert len(running) == 1
    depths = store.queue_depths()
    assert {queue: count for queue, (count, _) in depths.items()} == {"mail": 2, "": 2}
    assert abs((depths["mail"][1] - old).total_seconds()) < 1


def test_servers_with_skip_locked_use_it(store: Store) -> None:
    """MariaDB 10.6+, MySQL 8 and PostgreSQL reserve with SKIP LOCKED; SQLite never does."""
    assert store.skip_locked is (store.engine.dialect.name != "sqlite")


def test_heartbeats_and_silent_workers(store: Store) -> None:
    store.register_worker("a:1", "a", 1)
    store.register_worker("b:2", "b", 2)
    with store.engine.begin() as conn:
        conn.execute(update(wk).where(wk.c.name == "b:2").values(last_seen=utcnow() - timedelta(seconds=300)))
    store.beat({"a:1": 42})
    assert store.silent_workers(120) == ["b:2"]
    assert [(w["name"], w["current_job_id"]) for w in store.workers("a")] == [("a:1", 42)]
    store.register_worker("a:1", "a", 1)  # a reused name starts afresh
    assert store.workers("a")[0]["current_job_id"] is None


def test_lockers_are_the_names_of_one_host_holding_jobs(store: Store) -> None:
    """How a starting supervisor finds its host's dead workers without heartbeat rows: by lock."""
    store.insert([new(), new(), new(), new()])
    for name in ("web_1:7", "web_1:8", "webX1:9"):
        store.reserve(name, Filters())
    assert sorted(store.lockers("web_1")) == ["web_1:7", "web_1:8"]  # "_" is no wildcard
    assert store.lockers("web") == []

