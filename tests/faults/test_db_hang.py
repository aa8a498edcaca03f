"""The database hangs (a black hole: connections open, no answer): the supervisor's loop goes on.

A frozen server (SIGSTOP) used to freeze the supervisor in its next query
for PyMySQL's 120 s read timeout, and for ever on PostgreSQL (libpq has no
read timeout; the relay's kernel acknowledges every byte, so no TCP timeout
fires): no WATCHDOG=1 meanwhile, so systemd (``WatchdogSec=60``) would have
killed a daemon that had lost nothing. The server here is shared, so it is
not stopped: the daemon reaches it through ``Relay``, which is frozen instead
(``Relay.freeze``).
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dj_daemon.api import Queue
from tests import jobs
from tests.conftest import SERVERS
from tests.faults.test_db_outage import relay  # noqa: F401  (the fixture)
from tests.process.daemon import Daemon, wait_for

WATCHDOG_S = 16.0  # a ping every 8 s; the supervisor's waits on the database are bounded to 1 s (``upkeep``)
GRACEFUL_S = 2.0


def longest_silence(pings: list[float], since: float, until: float) -> float:
    """The longest time between ``since`` and ``until`` without a WATCHDOG=1."""
    marks = [since] + [t for t in pings if since < t < until] + [until]
    return max(b - a for a, b in zip(marks, marks[1:]))


def registered(store) -> set[str]:
    """The workers in the heartbeat table."""
    return {row["name"] for row in store.workers()}


@pytest.mark.slow
@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_watchdog_pings_and_a_stop_go_on_while_the_database_hangs(config, store, subprocess_env, relay,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    relayed = make_url(config.url).set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    daemon = Daemon({**subprocess_env, "DJ_DATABASE_URL": relayed, "DJ_GRACEFUL_TIMEOUT": str(GRACEFUL_S)},
                    "-n", "2", watchdog_usec=int(WATCHDOG_S * 1e6))
    try:
        daemon.wait_ready()
        queue = Queue(config, store)
        queue.enqueue_many(queue.prepare(jobs.record, side, n) for n in range(10))
        wait_for(lambda: len(jobs.runs(side)) == 10, what="jobs done before the hang")
        last_ping = max(t for t, m in daemon.messages if m == "WATCHDOG=1")
        relay.freeze()
        frozen_at = time.monotonic()
        victims = daemon.worker_pids()
        os.kill(victims[0], signal.SIGKILL)  # reaped and replaced; its release waits for the database
        wait_for(lambda: len(set(daemon.worker_pids()) - set(victims)) == 1, what="a respawn during the hang")
        window = WATCHDOG_S + 2  # longer than systemd would wait for a ping
        wait_for(lambda: time.monotonic() > frozen_at + window, timeout=window + 5, what="the hang's window")
        pings = [t for t, m in daemon.messages if m == "WATCHDOG=1"]
        silence = longest_silence(pings, last_ping, time.monotonic())
        assert silence < WATCHDOG_S, f"no WATCHDOG=1 for {silence:.1f}s: systemd would kill the daemon"
        assert any(t > frozen_at and "database unreachable" in m for t, m in daemon.messages), daemon.sent("STATUS=")
        assert daemon.proc.poll() is None

        relay.thaw()  # what the supervisor could not write meanwhile, it writes now, in order
        wait_for(lambda: registered(store) == {f"testhost:{pid}" for pid in daemon.worker_pids()},
                 what="registry caught up")
        assert f"testhost:{victims[0]}" not in registered(store)

        stop_at = time.monotonic()
        daemon.signal(signal.SIGTERM)  # the workers hang in their queries: killed after the grace period
        assert daemon.wait(GRACEFUL_S + 20) == 0, daemon.log()[-3000:]
        assert "STOPPING=1" in [m for t, m in daemon.messages if t > stop_at]
        log = daemon.log()
        assert "Traceback" not in log and "too short" not in log, log[-5000:]
    finally:
        daemon.close()
