"""The operators' workflow against the real daemon: drain, wait, restart, status, stalled jobs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from dj_daemon.api import Queue
from dj_daemon.worker import Worker
from long_jobs import ops
from tests import jobs
from tests.conftest import bin_path
from tests.long_jobs.conftest import long_jobs
from tests.process.daemon import wait_for


def test_drain_wait_then_restart_runs_everything_once(config, store, sentinel_dir, start_daemon,
                                                       subprocess_env, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue_many([queue.prepare(jobs.replicate, side, n, 0.1) for n in range(50)]
                       + [queue.prepare(jobs.submit, side, 100 + n, 0.1) for n in range(50)])
    daemon = start_daemon("-n", "2")
    wait_for(lambda: len([r for r in jobs.runs(side) if r.startswith("end-")]) >= 4, what="some jobs done")
    drained = long_jobs(subprocess_env, "drain", "--wait", "--timeout", "60")
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.splitlines()[0] == "draining testhost: defer_jobs.txt, hold-submissions.txt written"
    assert drained.stdout.strip().endswith("drained: no tracked job runs on this host")
    runs = jobs.runs(side)
    started = {r[len("start-"):] for r in runs if r.startswith("start-")}
    assert started == {r[len("end-"):] for r in runs if r.startswith("end-")}  # running ones completed
    parked = ("deferred", "rejected_shutting_down")
    # what has not run yet is parked when its turn comes; drain --wait only waits for what runs
    wait_for(lambda: sum(r["state"] in parked for r in store.tracked(limit=None)) == 100 - len(started),
             what="the rest parked")
    rows = store.tracked(limit=None)
    by_state = Counter(r["state"] for r in rows)
    assert by_state["completed"] == len(started) and by_state["running"] == 0 and by_state["enqueued"] == 0
    assert by_state["deferred"] + by_state["rejected_shutting_down"] == 100 - len(started)
    assert all(r["gate"] == {"deferred": "defer", "rejected_shutting_down": "hold"}[r["state"]]
               for r in rows if r["state"] in ("deferred", "rejected_shutting_down"))
    assert not {r["identifier"] for r in rows if r["state"] != "completed"} & started  # none of them ran
    assert daemon.proc.poll() is None  # the daemon stays up
    status = long_jobs(subprocess_env, "status")
    assert status.returncode == 3 and "DRAINING: defer_jobs.txt since" in status.stdout
    restarted = long_jobs(subprocess_env, "restart")
    assert restarted.returncode == 0 and f"{100 - len(started)} jobs re-enqueued" in restarted.stdout
    wait_for(lambda: len([r for r in jobs.runs(side) if r.startswith("end-")]) == 100, timeout=60,
             what="all 100 done")
    assert set(Counter(jobs.runs(side)).values()) == {1}  # each ran exactly once
    # a finished job's state is written with its worker's next reservation (or when it idles)
    wait_for(lambda: {r["state"] for r in store.tracked(limit=None)} == {"completed"}, what="all completed")


def test_two_concurrent_restarts_enqueue_each_parked_job_once(config, store, sentinel_dir, subprocess_env,
                                                              tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue_many(queue.prepare(jobs.replicate, side, n) for n in range(100))
    ops.drain(config)
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert Counter(r["state"] for r in store.tracked(limit=None)) == {"deferred": 100}
    procs = [subprocess.Popen([bin_path("long_jobs"), "restart"], env=subprocess_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    counted = sum(int(out.strip().splitlines()[-1].split()[0]) for out in outputs)
    assert counted == 100
    assert len(store.jobs(limit=1000)) == 100
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert Counter(jobs.runs(side)) == Counter({f"{e}-{n}": 1 for n in range(100) for e in ("start", "end")})


def test_one_identifier_runs_in_order_one_at_a_time(config, store, sentinel_dir, start_daemon, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    for step in (1, 2, 3):
        queue.enqueue(jobs.ordered_step, side, 5, step, 0.3)
    start_daemon("-n", "4")
    wait_for(lambda: len(jobs.runs(side)) == 6, what="three steps")
    assert jobs.runs(side) == ["start-1", "end-1", "start-2", "end-2", "start-3", "end-3"]


def test_stalled_after_the_whole_daemon_dies(config, store, sentinel_dir, start_daemon, subprocess_env,
                                             tmp_path) -> None:
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "flag")
    queue = Queue(config, store)
    ids = [queue.enqueue(jobs.tracked_until_flag, side, n, flag) for n in (1, 2)]
    env = {"DJ_HEARTBEAT_INTERVAL": "0.2", "DJ_HEARTBEAT_TIMEOUT": "2"}
    daemon = start_daemon("-n", "2", env=env)
    wait_for(lambda: jobs.runs(side).count("started") == 2, what="both running")
    os.killpg(daemon.proc.pid, signal.SIGKILL)  # supervisor and workers at once, as when a host dies
    daemon.wait(10)
    lj_env = {**subprocess_env, **env}
    wait_for(lambda: long_jobs(lj_env, "status").returncode == 4, timeout=15, what="stalled in status")
    status = long_jobs(lj_env, "status", "--json")
    snapshot = json.loads(status.stdout)
    assert sorted(r["identifier"] for r in snapshot["stalled"]) == ["1", "2"]
    assert all(" is dead: pid " in r["reason"] for r in snapshot["stalled"])  # this host knows at once
    reset = long_jobs(lj_env, "reset-stalled")
    assert reset.returncode == 0 and "2 stalled jobs reset" in reset.stdout
    errored = store.tracked(state="error")
    assert len(errored) == 2 and all(r["last_error"].startswith("stalled: worker testhost:") for r in errored)
    assert store.jobs() == []
    resent = long_jobs(lj_env, "resend", str(errored[0]["id"]))
    assert resent.returncode == 0, resent.stderr
    Path(flag).touch()
    start_daemon("-n", "1", env=env)
    wait_for(lambda: jobs.runs(side).count("done") == 1, what="resent job completed")
    wait_for(lambda: store.get_tracked(errored[0]["id"])["state"] == "completed", what="completed state")
    assert store.get_tracked(errored[1]["id"])["state"] == "error"
    assert ids  # both were enqueued through the API


def test_status_table_json_and_one_line_errors(config, store, sentinel_dir, subprocess_env, tmp_path) -> None:
    Queue(config, store).enqueue(jobs.replicate, str(tmp_path / "r"), 1)
    table = long_jobs(subprocess_env, "status")
    assert table.returncode == 4  # no daemon runs here: trouble
    for heading in ("draining: no", "daemon:", "workers:", "work queue: 1 waiting", "tracked jobs: 1 enqueued",
                    "running:", "stalled (running, worker gone):", "parked, waiting for `long_jobs restart`:"):
        assert heading in table.stdout
    snapshot = json.loads(long_jobs(subprocess_env, "status", "--json").stdout)
    assert snapshot["states"]["enqueued"] == 1 and snapshot["host"] == "testhost"
    listing = long_jobs(subprocess_env, "list", "--state", "enqueued")
    assert "tests.jobs:replicate" in listing.stdout
    cases = [
        ({"DJ_SENTINEL_DIR": str(tmp_path / "absent")}, ["drain"], "does not exist"),  # status: not draining
        ({"DJ_SENTINEL_DIR": "/proc/self"}, ["drain"], "is not writable"),
        ({}, ["resend", "424242"], "no tracked job with id 424242"),
        ({}, ["delete", "424242"], "no tracked job with id 424242"),
        ({"DJ_DATABASE_URL": "mysql+pymysql://u:pw-secret@127.0.0.1:1/x"}, ["status"], "Can't connect"),
    ]
    for env, args, fragment in cases:
        result = long_jobs({**subprocess_env, **env}, *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("long_jobs: error: ")
        assert fragment in lines[0] and "pw-secret" not in result.stderr + result.stdout
    usage = long_jobs(subprocess_env, "drain", "--timeout", "5")  # a timeout without --wait would be ignored
    assert usage.returncode == 2 and "--timeout needs --wait" in usage.stderr
    for bad in ("nan", "inf", "-1"):  # nan never expires, -1 gives up at once
        usage = long_jobs(subprocess_env, "drain", "--wait", "--timeout", bad)
        assert usage.returncode == 2 and f"--timeout must be a finite number of seconds, at least 0, not {bad}" \
            in usage.stderr
    assert not (Path(subprocess_env["DJ_SENTINEL_DIR"]) / "defer_jobs.txt").exists()


def test_status_never_prints_the_password(mysql_server, subprocess_env, tmp_path) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(mysql_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE IF NOT EXISTS dj_status_pw"))
        for host in ("%", "localhost", "127.0.0.1"):
            conn.execute(text(f"CREATE USER IF NOT EXISTS 'dj_status'@'{host}' IDENTIFIED BY 'Pw-S3cret-9'"))
            conn.execute(text(f"GRANT ALL ON dj_status_pw.* TO 'dj_status'@'{host}'"))
    try:
        url = make_url(mysql_server).set(username="dj_status", password="Pw-S3cret-9", database="dj_status_pw")
        (tmp_path / "s").mkdir()
        env = {**subprocess_env, "DJ_DATABASE_URL": url.render_as_string(hide_password=False),
               "DJ_SENTINEL_DIR": str(tmp_path / "s")}
        assert subprocess.run([bin_path("delayed_job"), "db", "init"], env=env, capture_output=True).returncode == 0
        for args in (["status"], ["status", "--json"], ["list"]):
            result = long_jobs(env, *args)
            assert "Pw-S3cret-9" not in result.stdout + result.stderr
        assert "dj_status:***@" in long_jobs(env, "status").stdout
    finally:
        with admin.connect() as conn:
            for host in ("%", "localhost", "127.0.0.1"):
                conn.execute(text(f"DROP USER IF EXISTS 'dj_status'@'{host}'"))
            conn.execute(text("DROP DATABASE IF EXISTS dj_status_pw"))
        admin.dispose()
