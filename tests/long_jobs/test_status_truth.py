"""``long_jobs status`` tells the truth at once: a killed daemon is down, its workers dead, a finished job done."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import text

from dj_daemon.api import Queue
from dj_daemon.daemonize import read_pid
from tests import jobs
from tests.long_jobs.conftest import long_jobs
from tests.long_jobs.order_jobs import copy_step, record_tracked_running
from tests.process.daemon import wait_for
from tests.process.test_initd_mode import dj, paths  # noqa: F401  (paths is a fixture)

#: heartbeats that would call a dead worker alive for the whole test
SLOW_BEATS = {"DJ_HEARTBEAT_INTERVAL": "60", "DJ_HEARTBEAT_TIMEOUT": "600"}


def ended(pid: int) -> bool:
    """Gone, or a zombie whose threads have all exited too: read here from /proc, not through the
    helper under test. A killed worker's main thread may be a zombie while its batch's watcher
    thread still runs, holding the worker's journal, by which this host judges it alive."""
    try:
        zombie = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        return zombie and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except FileNotFoundError:
        return True


def test_status_after_kill_9_of_the_daemon_says_down_on_its_first_call(
        config, store, sentinel_dir, start_daemon, subprocess_env, tmp_path: Path) -> None:
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "flag")
    env = {**subprocess_env, **SLOW_BEATS}
    for n in (1, 2):
        Queue(config, store).enqueue(jobs.tracked_until_flag, side, n, flag)
    daemon = start_daemon("-n", "2", env=SLOW_BEATS)
    wait_for(lambda: jobs.runs(side).count("started") == 2, what="both running")
    workers = daemon.worker_pids()
    up = long_jobs(env, "status", "--json")
    assert up.returncode == 0 and json.loads(up.stdout)["daemon"]["running"], up.stdout
    os.killpg(daemon.proc.pid, signal.SIGKILL)  # the supervisor stays a zombie: this test is its parent
    wait_for(lambda: all(ended(pid) for pid in [daemon.proc.pid, *workers]), what="all killed")
    status = long_jobs(env, "status", "--json")
    snapshot = json.loads(status.stdout)
    assert status.returncode == 4
    assert snapshot["daemon"]["running"] is False
    assert sorted(w["pid"] for w in snapshot["workers"] if w["dead"]) == sorted(workers)
    assert sorted(r["identifier"] for r in snapshot["stalled"]) == ["1", "2"] and snapshot["running"] == []
    assert all(" is dead: pid " in r["reason"] for r in snapshot["stalled"])
    table = long_jobs(env, "status").stdout
    assert f"DEAD (pid {workers[0]} is not running on this host)" in table


def test_initd_status_and_long_jobs_status_agree(config, store, sentinel_dir, subprocess_env, paths) -> None:
    pidfile, log_file = paths
    env = {**subprocess_env, **SLOW_BEATS, "DJ_PIDFILE": pidfile}
    assert dj(env, "start", "-n", "2", "--pidfile", pidfile, "--log-file", log_file).returncode == 0
    pid = read_pid(pidfile)
    assert pid is not None
    wait_for(lambda: len(store.workers()) == 2, what="two workers registered")
    workers = [w["pid"] for w in store.workers()]
    group = os.getpgid(pid)  # python-daemon's second fork: the daemon is not its group's leader
    for expected_code, lj_code in ((0, 0), (1, 4)):
        if expected_code:
            os.killpg(group, signal.SIGKILL)  # the daemon and its workers, as when the OOM killer takes them
            wait_for(lambda: all(ended(p) for p in [pid, *workers]), what="all killed")
        initd = dj(env, "status", "--pidfile", pidfile)
        status = long_jobs(env, "status", "--json")
        daemon = json.loads(status.stdout)["daemon"]
        assert (initd.returncode, status.returncode) == (expected_code, lj_code)
        assert daemon["state"] == initd.stdout.strip() and daemon["running"] is not bool(expected_code)
    assert all(w["dead"] for w in json.loads(status.stdout)["workers"])


def test_a_finished_tracked_job_is_not_running_when_its_worker_moves_on(
        config, store, sentinel_dir, start_daemon, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue(copy_step, side, 3, 1)
    queue.enqueue(record_tracked_running, side)
    start_daemon("-n", "1")
    wait_for(lambda: len(jobs.runs(side)) == 3, timeout=60, what="both jobs")
    assert jobs.runs(side) == ["start-3.1", "end-3.1", "running:none"]
    assert store.tracked(identifier="3")[0]["state"] == "completed"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_status_shows_rows_whose_times_and_pids_are_garbage(config, store, sentinel_dir, subprocess_env,
                                                           tmp_path: Path) -> None:
    """SQLite keeps any text in any column: a hand-edited row is shown, never a failed status."""
    Queue(config, store).enqueue(jobs.tracked_until_flag, str(tmp_path / "runs.txt"), 1, str(tmp_path / "flag"))
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE delayed_job_states SET state = 'running', started_at = 'garbage'"))
        conn.execute(text("UPDATE delayed_jobs SET locked_by = 'otherhost:1', locked_at = '0000-00-00'"))
        conn.execute(text("INSERT INTO delayed_job_workers (name, hostname, pid, started_at, last_seen) VALUES "
                          "('otherhost:1', 'otherhost', 1, 'x', 'never'), ('testhost:2', 'testhost', 'two', 'x', 'y')"))
    for args in (("status",), ("status", "--json"), ("list",)):
        shown = long_jobs(subprocess_env, *args)
        assert shown.returncode in (0, 3, 4) and "error" not in shown.stderr, (args, shown.stderr)
    snapshot = json.loads(long_jobs(subprocess_env, "status", "--json").stdout)
    assert {w["name"]: w["alive"] for w in snapshot["workers"]} == {"otherhost:1": False, "testhost:2": False}
