"""Poison jobs: a job that ends the process running it (os._exit, SIGKILL, a segfault) must end too.

Each death of its worker counts an attempt (the supervisor releases it with
``(attempt N)`` in ``last_error``); once they reach ``max_attempts`` the next
worker to reserve it fails it for good without running it. Meanwhile the
other jobs flow, the dying pools back off, and the supervisor keeps
pinging systemd's watchdog.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from dj_daemon.api import Queue
from tests import jobs
from tests.conftest import DIALECTS
from tests.process.daemon import wait_for

DEATHS = ("exit", "SIGKILL", "SIGSEGV")
HOW = {"exit": "exited with code 3", "SIGKILL": "killed by SIGKILL", "SIGSEGV": "killed by SIGSEGV"}


@pytest.mark.parametrize("db_url", DIALECTS, indirect=True)
def test_a_job_that_kills_its_worker_fails_for_good_after_max_attempts(config, store, start_daemon,
                                                                      tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    poison = {how: queue.enqueue(jobs.ends_its_worker, side, how, queue=how) for how in DEATHS}
    good = [queue.enqueue(jobs.record, side, f"good{n}", queue="good") for n in range(20)]
    pools = [arg for how in (*DEATHS, "good") for arg in ("--pool", f"{how}:1")]
    daemon = start_daemon(*pools, env={"DJ_MAX_ATTEMPTS": "3"}, watchdog_usec=1_000_000)
    daemon.wait_ready()
    wait_for(lambda: all(store.get(job_id).failed_at for job_id in poison.values()), timeout=60,
             what="every poison job failed for good")
    wait_for(lambda: store.counts() == {"waiting": 0, "running": 0, "failed": 3}, what="the good jobs done")
    runs = jobs.runs(side)
    assert {how: runs.count(how) for how in DEATHS} == {how: 3 for how in DEATHS}
    assert sorted(token for token in runs if token.startswith("good")) == sorted(f"good{n}" for n in range(20))
    for how, job_id in poison.items():
        job = store.get(job_id)
        assert job.attempts == 3 and job.locked_by is None
        assert job.last_error.startswith("gave up after 3 attempts (max_attempts 3); the last one: worker testhost:")
        assert job.last_error.endswith(f"{HOW[how]} (attempt 3)")
    assert daemon.proc.poll() is None
    pings = [at for at, message in daemon.messages if message == "WATCHDOG=1"]
    gaps = [later - earlier for earlier, later in zip(pings, pings[1:])] or [float("inf")]
    assert pings and max(gaps) < 3.0, f"the watchdog went unpinged for {max(gaps):.1f}s (WatchdogSec would be 1s)"
    assert all(job_id not in {j.id for j in store.jobs()} for job_id in good)
