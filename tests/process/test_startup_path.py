"""What the supervisor does between its start and its workers' first job (issue 17).

The first read of cancel requests waits as the first heartbeat does: at start no worker of this
run holds a job that could be cancelled, and what an earlier run's requests name can wait that
long; read at once, it took CPU from the workers on their way to their first job. What that saves
is measured in bench/ (first job after start); this test pins the wait itself, which on a busy
host may end before the first job does.
"""
from __future__ import annotations

import sys

from dj_daemon.api import Queue
from dj_daemon.supervisor import FIRST_BEAT
from tests.jobs import runs
from tests.process.daemon import wait_for


def test_the_first_cancel_read_waits_for_the_first_heartbeat(config, store, start_daemon, tmp_path) -> None:
    log, done = tmp_path / "cancel-reads", tmp_path / "done"
    Queue(config, store).enqueue("tests.jobs:record", str(done), "first")
    daemon = start_daemon("-n", "2", env={"DJ_TEST_CANCEL_LOG": str(log)},
                          program=[sys.executable, "-m", "tests.process.startup_cli"])
    wait_for(lambda: len(runs(str(log))) >= 2 or daemon.proc.poll() is not None, 20, "a read of cancel requests")
    wait_for(lambda: runs(str(done)) == ["first"] or daemon.proc.poll() is not None, 20, "the first job")
    assert daemon.proc.poll() is None, daemon.log()
    (first, started), (second, read) = [token.split(":") for token in runs(str(log))[:2]]
    assert (first, second) == ("start", "read")
    assert float(read) - float(started) >= FIRST_BEAT, "cancel requests read before the first heartbeat's time"
