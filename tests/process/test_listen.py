"""PostgreSQL's LISTEN/NOTIFY: a job enqueued from another host starts at once, and an idle daemon
only polls slowly (``dj_daemon.listen``).

The jobs here are inserted with ``Store.insert``, which sends no same-host nudge (``Queue.enqueue``
does), and the daemon runs as another ``DJ_HOSTNAME``: only the database can have told it.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dj_daemon.api import Queue
from dj_daemon.listen import SAFETY_POLL
from dj_daemon.store.common import INSERT_JOB
from dj_daemon.store.postgresql import CHANNEL
from tests import jobs
from tests.process import listen_jobs
from tests.process.daemon import wait_for

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
#: As from another host, and with polls too slow to explain a quick start.
ELSEWHERE = {"DJ_HOSTNAME": "otherhost", "DJ_POLL_INTERVAL": "30", "DJ_SLEEP_DELAY": "600"}


def _enqueue_stamp(config, store, side: str) -> None:
    store.insert([Queue(config, store).prepare(listen_jobs.stamp, side, time.time())])


def _pickups(side: str) -> list[float]:
    return [float(started) - float(enqueued) for enqueued, started in (line.split(":") for line in jobs.runs(side))]


def test_a_job_from_another_host_starts_at_once(config, store, start_daemon, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    daemon = start_daemon("-n", "2", env=ELSEWHERE)
    daemon.wait_ready()
    wait_for(lambda: f"LISTEN {CHANNEL}" in _listening(config.url), what="the supervisor listening")
    time.sleep(0.5)  # both workers idle, waiting to be woken
    for n in range(5):
        _enqueue_stamp(config, store, side)
        wait_for(lambda: len(jobs.runs(side)) == n + 1, timeout=10, what=f"job {n + 1} run")
        time.sleep(0.2)
    pickups = _pickups(side)
    # 30 s between polls: a start within a second is the notification's doing (2 ms measured, unloaded)
    assert max(pickups) < 1.0 and statistics.median(pickups) < 0.25, pickups


def test_a_job_due_later_starts_when_due_without_a_poll(config, store, start_daemon, tmp_path: Path) -> None:
    """The notification carries the rows' earliest ``run_at``: the supervisor polls then."""
    side = str(tmp_path / "runs.txt")
    daemon = start_daemon("-n", "1", env=ELSEWHERE)
    daemon.wait_ready()
    wait_for(lambda: f"LISTEN {CHANNEL}" in _listening(config.url), what="the supervisor listening")
    time.sleep(0.5)
    queue = Queue(config, store)
    due = time.time() + 1.5
    store.insert([queue.prepare(jobs.record, side, "later", run_at=queue.store.clock() + _seconds(1.5))])
    wait_for(lambda: jobs.runs(side) == ["later"], timeout=10, what="the job due later run")
    assert time.time() - due < 2.0


def test_an_idle_daemon_only_polls_slowly(config, store, start_daemon, tmp_path: Path) -> None:
    """Listening, the idle poll (``Store.has_ready``, counted) runs every ``SAFETY_POLL`` seconds,
    not every ``poll_interval`` (0.5 s here)."""
    polls = tmp_path / "polls.txt"
    start_daemon("-n", "2", env={**ELSEWHERE, "DJ_POLL_INTERVAL": "0.5", "DJ_TEST_POLL_LOG": str(polls)},
                 program=[sys.executable, "-m", "tests.process.counted_cli"]).wait_ready()
    wait_for(lambda: f"LISTEN {CHANNEL}" in _listening(config.url), what="the supervisor listening")
    time.sleep(0.5 + SAFETY_POLL * 1.5)
    times = [float(line.split()[1]) for line in polls.read_text().splitlines()]
    assert 1 <= len(times) <= 3, times  # the first (at start) and one or two safety polls
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert all(gap > SAFETY_POLL * 0.9 for gap in gaps), gaps


def test_a_job_whose_lock_is_freed_starts_at_once(config, store, start_daemon, tmp_path: Path) -> None:
    """A lock freed by another host (here ``long_jobs restart`` lifting its hold) announces its job
    as an insert does: it starts at once, not at the next safety poll."""
    side = str(tmp_path / "runs.txt")
    daemon = start_daemon("-n", "1", env=ELSEWHERE)
    daemon.wait_ready()
    wait_for(lambda: f"LISTEN {CHANNEL}" in _listening(config.url), what="the supervisor listening")
    new = Queue(config, store).prepare(listen_jobs.stamp, side, 0.0)
    now = store.clock()
    store.transaction(lambda conn: conn.execute(INSERT_JOB, {**new.params(now), "locked_by": "restart",
                                                             "locked_at": now}))
    time.sleep(1.0)  # the insert's notification heard, and nothing to take
    freed_at = time.time()
    assert store.release_hold("restart") == 1
    wait_for(lambda: len(jobs.runs(side)) == 1, timeout=SAFETY_POLL + 5, what="the freed job run")
    started = float(jobs.runs(side)[0].split(":")[1])
    assert started - freed_at < 1.0, started - freed_at  # the safety poll: up to 10 s


#: Seconds within which a PostgreSQL backend reports its transactions to ``pg_stat_database``
#: (at its next transaction a second on, or after 10 s idle), and the window counted.
STATS_LAG, WINDOW = 11.0, 3 * SAFETY_POLL


def test_an_idle_daemon_sends_two_statements_per_safety_poll(config, store, start_daemon) -> None:
    """Counted by the server: heartbeats off, an idle daemon that listens sends its safety poll
    and its queue reading once per ``SAFETY_POLL`` each, and no read of the cancel requests
    while no worker has had a job: 0.2 statements/s. Each of its statements reads or writes the
    queue's tables, so ``pg_stat_user_tables`` counts them (scans, rows written); the database's
    transactions would count autovacuum's too. The count reaches back up to ``STATS_LAG``
    before the window, hence that span's periods allowed, and one more for where they fall."""
    quiet = {**ELSEWHERE, "DJ_POLL_INTERVAL": "0.5", "DJ_HEARTBEAT_INTERVAL": "3600", "DJ_HEARTBEAT_TIMEOUT": "7200"}
    start_daemon("-n", "2", env=quiet).wait_ready()
    wait_for(lambda: f"LISTEN {CHANNEL}" in _listening(config.url), what="the supervisor listening")
    time.sleep(STATS_LAG)  # the start-up's statements reported first
    first = _table_work(config.url)
    time.sleep(WINDOW)
    sent = _table_work(config.url) - first
    periods = int((WINDOW + STATS_LAG) // SAFETY_POLL) + 1  # a periodic duty's most in that span
    assert sent <= 2 * periods, sent  # 10; a read every 0.5 s, 1 s or 5 s: 30 or more


def _table_work(url: str) -> int:
    """Scans and rows written of the test database's own tables so far (the reading itself reads
    only the catalog)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0) + n_tup_ins + n_tup_upd + n_tup_del), 0) "
                "FROM pg_stat_user_tables")).scalar())
    finally:
        engine.dispose()


def _seconds(n: float):
    from datetime import timedelta

    return timedelta(seconds=n)


def _admin(url: str):
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _listening(url: str) -> str:
    """The last statements of the database's sessions (the listener's is its LISTEN)."""
    engine = _admin(url)
    try:
        with engine.connect() as conn:
            return " ".join(conn.execute(text("SELECT query FROM pg_stat_activity WHERE datname = :db"),
                                         {"db": make_url(url).database}).scalars())
    finally:
        engine.dispose()


def test_a_lost_listening_connection_is_replaced(config, store, start_daemon, tmp_path: Path) -> None:
    """The listener's session ended by the server: the supervisor says so, listens again, and a
    job from elsewhere starts at once again."""
    side = str(tmp_path / "runs.txt")
    daemon = start_daemon("-n", "1", env=ELSEWHERE)
    daemon.wait_ready()
    wait_for(lambda: f"LISTEN {CHANNEL}" in _listening(config.url), what="the supervisor listening")
    engine = _admin(config.url)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :db AND query = :listen"),
                     {"db": make_url(config.url).database, "listen": f"LISTEN {CHANNEL}"})
    engine.dispose()
    wait_for(lambda: "lost the connection listening for new jobs" in daemon.log(), what="the loss logged")
    wait_for(lambda: f"LISTEN {CHANNEL}" in _listening(config.url), what="listening again")
    time.sleep(0.5)
    _enqueue_stamp(config, store, side)
    wait_for(lambda: len(jobs.runs(side)) == 1, timeout=10, what="the job run")
    assert _pickups(side)[0] < 1.0
