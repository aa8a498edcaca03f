"""The runs table on every dialect: hosts racing on one occurrence enqueue it once; missed
occurrences follow the entry's policy; old rows are pruned, recent ones kept."""
from __future__ import annotations

import multiprocessing
import os
from datetime import datetime, timedelta

from sqlalchemy import func, select

from dj_daemon.config import Config
from dj_daemon.recurrence import Entry
from dj_daemon.schedule import Scheduler
from dj_daemon.schema import delayed_jobs, recurring_runs
from dj_daemon.store import Store, open_store
from dj_daemon.store import recurring as runs

HOSTS = 8
NOW = datetime(2026, 3, 1, 12, 0, 0, 400000)


def entry(**options) -> Entry:
    return Entry(**{"name": "tick", "target": "tests.schedule.recurring_jobs:record", "interval": 1,
                    "args": ("/dev/null",), "grace": 5, **options})


def rows(store: Store) -> list[tuple[datetime, int]]:
    query = select(recurring_runs.c.occurrence, recurring_runs.c.job_id).order_by(recurring_runs.c.occurrence)
    return [tuple(row) for row in store.transaction(lambda conn: conn.execute(query).all())]


def job_count(store: Store) -> int:
    return store.transaction(lambda conn: conn.execute(select(func.count()).select_from(delayed_jobs)).scalar())


def _host(config: Config, index: int, barrier, results) -> None:
    """One host's supervisor turn, in a forked process with a store of its own."""
    code = 1
    try:
        store = open_store(config.replace(hostname=f"host{index}"))
        scheduler = Scheduler(config.replace(hostname=f"host{index}"))
        barrier.wait(30)
        results[index] = scheduler.tick(store, NOW)
        code = 0
    finally:
        os._exit(code)


def test_hosts_racing_on_the_same_occurrences_enqueue_each_once(config: Config, store: Store) -> None:
    config = config.replace(schedule=(entry(),))
    earlier = Scheduler(config)
    runs.enqueue(store, "tick", NOW.replace(microsecond=0) - timedelta(seconds=4),
                 earlier.planned[0].job(earlier.queue), "earlier")  # the last run before: 4 occurrences are due
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(HOSTS), context.Array("i", HOSTS)
    hosts = [context.Process(target=_host, args=(config, i, barrier, results)) for i in range(HOSTS)]
    for host in hosts:
        host.start()
    for host in hosts:
        host.join(60)
    assert [host.exitcode for host in hosts] == [0] * HOSTS
    enqueued = sum(results)
    occurrences = [occurrence for occurrence, _ in rows(store)]
    assert occurrences == [NOW.replace(microsecond=0) - timedelta(seconds=s) for s in (4, 3, 2, 1, 0)]
    assert enqueued == 4 and job_count(store) == 5  # each occurrence's job once, the losers' rolled back
    assert len({job_id for _, job_id in rows(store)}) == 5


def test_missed_occurrences_are_skipped(config: Config, store: Store) -> None:
    scheduler = Scheduler(config.replace(schedule=(entry(),)))
    runs.enqueue(store, "tick", NOW - timedelta(hours=1), scheduler.planned[0].job(scheduler.queue), "earlier")
    assert scheduler.tick(store, NOW) == 5  # the 5 seconds on time (grace 5 s) only
    assert rows(store)[1][0] == NOW.replace(microsecond=0) - timedelta(seconds=4)


def test_missed_occurrences_run_once(config: Config, store: Store) -> None:
    scheduler = Scheduler(config.replace(schedule=(entry(missed="run_once"),)))
    runs.enqueue(store, "tick", NOW - timedelta(hours=1), scheduler.planned[0].job(scheduler.queue), "earlier")
    assert scheduler.tick(store, NOW) == 6  # one job for the 3,595 missed, then the 5 on time
    assert rows(store)[1][0] == NOW.replace(microsecond=0) - timedelta(seconds=5)
    assert scheduler.tick(store, NOW + timedelta(seconds=0.3)) == 0  # handled: no second run
    assert scheduler.tick(store, NOW + timedelta(seconds=1)) == 1


def test_a_new_entry_has_missed_nothing_and_waits_for_its_next_occurrence(config: Config, store: Store) -> None:
    scheduler = Scheduler(config.replace(schedule=(entry(cron="0 0 1 1 *", interval=None, missed="run_once"),)))
    assert scheduler.tick(store, NOW) == 0 and rows(store) == []
    assert scheduler.wake_at == datetime(2027, 1, 1)


def test_prune_keeps_the_latest_rows_and_the_recent_ones(config: Config, store: Store) -> None:
    scheduler = Scheduler(config.replace(schedule=(entry(),)))
    new = scheduler.planned[0].job(scheduler.queue)
    for hours in range(30, 0, -1):
        runs.enqueue(store, "tick", NOW - timedelta(hours=hours), new, "earlier")
    assert runs.prune(store, "tick", NOW - timedelta(hours=25)) == 5  # older than 25 h, beyond the last 10
    assert runs.prune(store, "tick", NOW) == 15  # the last 10 are kept whatever their age
    assert len(rows(store)) == runs.KEEP
    assert runs.last_runs(store)["tick"].occurrence == NOW - timedelta(hours=1)
