"""What the supervisor does between its start and its workers' first job (issue 17).

The first read of cancel requests waits as the first heartbeat does: at start no worker of this
run holds a job that could be cancelled, and what an earlier run's requests name can wait that
long; read at once, it took CPU from the workers on their way to their first job.
"""
from __future__ import annotations

import os
import sys

from dj_daemon.api import Queue
from tests.jobs import runs
from tests.process.daemon import wait_for


def test_the_first_cancel_read_comes_after_the_first_job(config, store, start_daemon, tmp_path) -> None:
    reads, done = tmp_path / "cancel-reads", tmp_path / "done"
    Queue(config, store).enqueue("tests.jobs:record", str(done), "first")
    daemon = start_daemon("-n", "2", env={"DJ_TEST_CANCEL_LOG": str(reads)},
                          program=[sys.executable, "-m", "tests.process.startup_cli"])
    wait_for(lambda: runs(str(reads)) or daemon.proc.poll() is not None, 20, "a read of cancel requests")
    assert runs(str(done)) == ["first"], daemon.log()
    assert float(runs(str(reads))[0]) >= os.stat(done).st_mtime, "cancel requests read before the first job"
