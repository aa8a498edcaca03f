"""Reloads and respawns raise no database alarm: the real daemon on MariaDB, scraped over HTTP.

Every fork used to cost the supervisor its idle poll's connection: the child
dropped the inherited connection object, the garbage collector closed it,
PyMySQL sent COM_QUIT on the socket the supervisor still used, and the
supervisor's next poll logged ``database error ... Lost connection`` and
raised ``delayed_job_database_errors_total``, the metric operators alert on
(docs/operations.md). See ``Store.forget_connections``.
"""
from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from dj_daemon.api import Queue
from tests import jobs
from tests.process.daemon import wait_for
from tests.process.test_metrics import free_port, scrape, total

ROUNDS = 10
JOBS_PER_ROUND = 5


def run_a_few_jobs(queue: Queue, side: str, round_name: str) -> None:
    """Insert a few jobs and wait for them to run. Inserted by the store itself, they send no
    nudge: idle workers learn of them from the supervisor's poll, on the connection the last
    fork put at risk."""
    tokens = [f"{round_name}-{n}" for n in range(JOBS_PER_ROUND)]
    queue.store.insert([queue.prepare(jobs.record, side, token) for token in tokens])
    wait_for(lambda: set(tokens) <= set(jobs.runs(side)), what=f"jobs of {round_name}")


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)  # the protocol that says goodbye on close
def test_ten_reloads_and_ten_respawns_raise_no_database_error(config, store, start_daemon, tmp_path: Path) -> None:
    side, port = str(tmp_path / "runs.txt"), free_port()
    queue = Queue(config, store)
    daemon = start_daemon("-n", "2", env={"DJ_METRICS_PORT": str(port), "DJ_POLL_INTERVAL": "0.1"})
    daemon.wait_ready()
    run_a_few_jobs(queue, side, "first")
    for n in range(ROUNDS):
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: len(daemon.sent("READY=1")) == n + 2, what=f"reload {n + 1} complete")
        run_a_few_jobs(queue, side, f"hup{n}")
    for n in range(ROUNDS):
        before = daemon.worker_pids()
        os.kill(before[0], signal.SIGKILL)  # an idle worker: its death costs no job a second run
        wait_for(lambda: len(set(daemon.worker_pids()) - set(before)) == 1 and len(daemon.worker_pids()) == 2,
                 what=f"respawn {n + 1}")
        run_a_few_jobs(queue, side, f"kill{n}")

    log = daemon.log()
    assert "database error" not in log and "Lost connection" not in log, log[-5000:]
    found = scrape(port)
    assert total(found, "delayed_job_database_errors_total") == 0
    ran = Counter(jobs.runs(side))
    assert len(ran) == (2 * ROUNDS + 1) * JOBS_PER_ROUND and set(ran.values()) == {1}
    assert total(found, "delayed_job_jobs_performed_total") == len(ran)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
