"""Found by the kill storm: after five young deaths the supervisor withheld WATCHDOG=1.

The supervisor used to withhold the watchdog ping while a pool's workers kept
dying young, and then until one of them outlived ``EARLY_DEATH``: after 5 quick
kills (an operator, the OOM killer) the respawned workers could run jobs
happily while systemd (``WatchdogSec=60`` in systemd/delayed_job.service) aborted
the whole daemon, jobs in hand included. The watchdog watches the supervisor's
loop, which runs whatever its workers do: it pings throughout, backoff included.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from dj_daemon.api import Queue
from tests.faults import jobs as fjobs
from tests.faults.conftest import Ledger, wait_until
from tests.process.daemon import Daemon

WORKERS = 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_watchdog_pings_throughout_workers_dying_young(config, store, subprocess_env, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    daemon = Daemon(subprocess_env, "-n", str(WORKERS), watchdog_usec=2_000_000)  # a ping every second
    try:
        daemon.wait_ready()
        first = daemon.worker_pids()
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        # five young deaths in a row: the pool backs off 8 s, then respawns
        assert wait_until(lambda: len(set(daemon.worker_pids()) - set(first)) == WORKERS, timeout=20, interval=0.05)
        queue = Queue(config, store)
        for n in range(20):
            queue.enqueue(fjobs.timed, side, f"after{n}", 0.01)
        assert wait_until(lambda: len(Ledger.read(side).ends) == 20, timeout=20)  # the new workers work
        assert daemon.proc.poll() is None
        pings = [at for at, message in daemon.messages if message == "WATCHDOG=1"]
        gaps = [later - earlier for earlier, later in zip(pings, pings[1:])] or [float("inf")]
        assert max(gaps) < 3.0, f"no WATCHDOG=1 for {max(gaps):.1f}s: systemd would abort this healthy daemon"
    finally:
        daemon.close()
