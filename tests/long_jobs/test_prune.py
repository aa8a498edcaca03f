"""Completed tracked jobs older than ``tracked_retention`` go, with their history, in small batches,
by the daemon; nothing else does."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from dj_daemon.job import utcnow
from dj_daemon.schema import state_history as sh, tracked_jobs as tj
from tests.process.daemon import wait_for


def seed(store, rows: list[tuple[str, int, int]]) -> None:
    """Tracked rows (state, created and finished that many days ago), each with two history rows,
    in one transaction: as months of use leave them."""
    now = utcnow()
    values = [{"job_class": "tests.jobs:replicate", "identifier": str(n), "state": state, "gate": "defer",
               "priority": 0, "payload": "{}", "created_at": now - timedelta(days=created),
               "updated_at": now - timedelta(days=finished), "finished_at": now - timedelta(days=finished)}
              for n, (state, created, finished) in enumerate(rows)]

    def work(conn) -> None:
        conn.execute(tj.insert(), values)
        ids = list(conn.execute(select(tj.c.id).order_by(tj.c.id)).scalars())
        conn.execute(sh.insert(), [{"state_id": i, "state": s, "at": now} for i in ids for s in ("enqueued", "done")])
    store.transaction(work)


def left(store) -> tuple[Counter, int]:
    """States of the tracked rows left, and how many history rows."""
    def read(conn):
        states = Counter(conn.execute(select(tj.c.state)).scalars())
        return states, conn.execute(select(func.count()).select_from(sh)).scalar()
    return store.transaction(read)


def test_prune_completed_walks_in_batches_and_keeps_young_error_and_parked_rows(store) -> None:
    # ids grow with created_at; a straggler was created long ago and completed recently
    seed(store, [("completed", 50, 45)] * 5 + [("error", 49, 45), ("deferred", 48, 45), ("completed", 47, 2)]
         + [("completed", 46, 40)] * 4 + [("completed", 10, 9)] * 3)
    cutoff = utcnow() - timedelta(days=30)
    calls, after, pruned = [], 0, 0
    while after is not None:
        count, after = store.prune_completed(cutoff, after, limit=4)
        calls.append((count, after))
        pruned += count
    # batches of 4 completed rows by id: 1-4 (all old), then 5, 8-10 (8 is the straggler), then 11-14,
    # whose last one was created within the retention: no later row can be old, the round ends
    assert calls == [(4, 4), (3, 10), (2, None)], calls
    assert pruned == 9
    states, history = left(store)
    assert states == Counter({"completed": 4, "error": 1, "deferred": 1})  # the straggler and the young three
    assert history == 2 * 6
    assert store.prune_completed(cutoff, 0, limit=1000) == (0, None)  # a new round: nothing more, one batch


def test_the_daemon_prunes_old_completed_jobs_a_batch_at_a_time_and_logs_the_count(store, start_daemon) -> None:
    seed(store, [("completed", 40, 35)] * 2500 + [("error", 40, 35), ("completed", 3, 2)])
    daemon = start_daemon("-n", "1", env={"DJ_HEARTBEAT_INTERVAL": "0.2", "DJ_HEARTBEAT_TIMEOUT": "5"})
    wait_for(lambda: left(store)[0]["completed"] == 1, timeout=30, what="old completed rows pruned")
    assert left(store) == (Counter({"completed": 1, "error": 1}), 4)
    wait_for(lambda: "pruned 2500 completed tracked job(s) older than 30 day(s)" in daemon.log(),
             what="the count in the log")
    assert daemon.log().count("pruned ") == 1  # one line a round, once the round is over


def test_retention_zero_keeps_completed_jobs_for_ever(store, start_daemon) -> None:
    seed(store, [("completed", 4000, 3000)] * 3)
    daemon = start_daemon("-n", "1", env={"DJ_HEARTBEAT_INTERVAL": "0.2", "DJ_HEARTBEAT_TIMEOUT": "5",
                                          "DJ_TRACKED_RETENTION": "0"})
    daemon.wait_ready()
    started = utcnow()
    wait_for(lambda: any(w["last_seen"] > started + timedelta(seconds=1) for w in store.workers()),
             what="five heartbeats since the start")
    assert left(store) == (Counter({"completed": 3}), 6) and "pruned" not in daemon.log()
