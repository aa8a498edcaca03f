"""Found by the kill storm: after five young deaths the supervisor withholds WATCHDOG=1 for good.

``Supervisor._plan_respawn`` resets a pool's early-death count only when a
later worker of that pool dies old; ``_healthy`` withholds the watchdog ping
while the count is at ``CRASH_LOOP`` (5). So after 5 quick kills (an operator,
the OOM killer) the respawned workers may run jobs happily for hours, yet no
WATCHDOG=1 is ever sent again and systemd (``WatchdogSec=60`` in
systemd/delayed_job.service) aborts the whole daemon, jobs in hand included.
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
def test_watchdog_pings_resume_once_respawned_workers_stay_up(config, store, subprocess_env, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    daemon = Daemon(subprocess_env, "-n", str(WORKERS), watchdog_usec=2_000_000)  # a ping every second
    try:
        daemon.wait_ready()
        first = daemon.worker_pids()
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        # five young deaths in a row: the pool backs off 8 s, then respawns
        assert wait_until(lambda: len(set(daemon.worker_pids()) - set(first)) == WORKERS, timeout=20, interval=0.05)
        respawned = time.monotonic()
        queue = Queue(config, store)
        for n in range(20):
            queue.enqueue(fjobs.timed, side, f"after{n}", 0.01)
        assert wait_until(lambda: len(Ledger.read(side).ends) == 20, timeout=20)  # the new workers work
        # once they have outlived EARLY_DEATH (10 s) the supervisor has no reason left to withhold pings
        resumed = wait_until(lambda: any(t > respawned and m == "WATCHDOG=1" for t, m in daemon.messages),
                             timeout=12 - (time.monotonic() - respawned), interval=0.1)
        assert daemon.proc.poll() is None
        assert resumed, "no WATCHDOG=1 since the respawn: systemd would abort this healthy daemon"
    finally:
        daemon.close()
