"""A worker respawned while the database is away is still known: it registers before it reserves.

The supervisor used to write a new worker's heartbeat row when it forked it;
in an outage that write failed and was never tried again, so the worker's
locks belonged to nobody the next daemon would look for, and stayed for
``max_run_time`` (4 h) after a later kill -9 of the whole daemon.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dj_daemon.api import Queue
from tests import jobs
from tests.conftest import SERVERS
from tests.faults.conftest import wait_until
from tests.faults.test_daemon_kill import kill_whole
from tests.faults.test_db_outage import relay  # noqa: F401  (the fixture)
from tests.process.daemon import wait_for


@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_a_worker_born_in_an_outage_registers_and_its_jobs_are_freed_after_a_crash(
        config, store, subprocess_env, daemons, relay, tmp_path: Path) -> None:  # noqa: F811
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "flag")
    relayed = make_url(config.url).set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    daemon = daemons({**subprocess_env, "DJ_DATABASE_URL": relayed}, "-n", "1")
    daemon.wait_ready()
    [first] = daemon.worker_pids()
    relay.cut()
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: daemon.worker_pids() not in ([], [first]), timeout=20)
    [born] = daemon.worker_pids()
    job_id = Queue(config, store).enqueue(jobs.sleep_until_flag, side, flag, 60)
    relay.restore()
    wait_for(lambda: jobs.runs(side) == ["started"], what="the worker born in the outage runs the job")
    assert f"testhost:{born}" in {row["name"] for row in store.workers()}
    assert store.get(job_id).locked_by == f"testhost:{born}"
    kill_whole(daemon)
    daemons(subprocess_env, "-n", "1").wait_ready()
    wait_for(lambda: jobs.runs(side) == ["started", "started"], what="the job freed at start and run again")
    open(flag, "w").close()
    wait_for(lambda: store.counts()["waiting"] + store.counts()["running"] == 0, what="the job done")
