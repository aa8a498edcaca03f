"""The real daemon (``delayed_job run``) as a subprocess: sd_notify, signals, dead workers, reload, recycling."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from dj_daemon import nudge
from dj_daemon.api import Queue
from dj_daemon.job import utcnow
from dj_daemon.schema import workers as wk
from dj_daemon.store import Filters
from tests import jobs
from tests.process.daemon import wait_for


def test_notify_ready_status_watchdog_and_stopping(config, store, start_daemon, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    daemon = start_daemon("-n", "2", watchdog_usec=1_000_000)
    daemon.wait_ready()
    for n in range(5):
        Queue(config, store).enqueue(jobs.record, side, n)
    wait_for(lambda: len(jobs.runs(side)) == 5, what="5 jobs run")
    wait_for(lambda: any("5 jobs done" in m for m in daemon.sent("STATUS=")), what="STATUS with 5 jobs done")
    assert daemon.sent("STATUS=")[-1].startswith("STATUS=2 workers (0 busy, 2 idle), 5 jobs done")
    wait_for(lambda: len(daemon.sent("WATCHDOG=1")) >= 4, what="watchdog pings")
    pings = [t for t, m in daemon.messages if m == "WATCHDOG=1"]
    assert len(pings) >= 3 and max(b - a for a, b in zip(pings, pings[1:])) < 1.0  # WATCHDOG_USEC is 1 s
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, daemon.log()
    assert daemon.sent("STOPPING=1")
    assert store.workers() == []


def test_kill_9_of_a_worker_frees_its_job_at_once(config, store, start_daemon, tmp_path: Path) -> None:
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "finish")
    job_id = Queue(config, store).enqueue(jobs.sleep_until_flag, side, flag, 30, queue="slow")
    daemon = start_daemon("--pool", "slow:1", "--pool", "*:1")
    daemon.wait_ready()
    wait_for(lambda: "started" in jobs.runs(side), what="job started")
    victim = int(store.get(job_id).locked_by.rsplit(":", 1)[1])
    signal_sent = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: store.get(job_id).locked_by != f"testhost:{victim}", timeout=10, what="job unlocked")
    assert time.monotonic() - signal_sent < 2.0
    job = store.get(job_id)
    assert job.attempts == 1 and job.last_error == f"worker testhost:{victim} killed by SIGKILL (attempt 1)"
    wait_for(lambda: len(daemon.worker_pids()) == 2 and victim not in daemon.worker_pids(), what="replacement")
    Path(flag).touch()
    wait_for(lambda: jobs.runs(side).count("done") == 1, what="job completed")
    wait_for(lambda: store.jobs() == [], what="row deleted")
    assert jobs.runs(side) == ["started", "started", "done"]  # cut once by the kill, completed once
    assert f"worker testhost:{victim} killed by SIGKILL" in daemon.log()


def test_sigterm_lets_running_jobs_finish(config, store, start_daemon, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    for n in range(3):
        queue.enqueue(jobs.sleep_then_record, side, 1.5, f"done{n}")
    daemon = start_daemon("-n", "3", env={"DJ_GRACEFUL_TIMEOUT": "20"})
    daemon.wait_ready()
    wait_for(lambda: jobs.runs(side).count("started") == 3, what="3 jobs running")
    stopped = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, daemon.log()
    assert time.monotonic() - stopped < 20 + 5
    assert sorted(jobs.runs(side)) == ["done0", "done1", "done2", "started", "started", "started"]
    assert store.jobs() == []


def test_sigterm_past_the_grace_period_releases_jobs_with_the_reason(config, store, start_daemon, tmp_path) -> None:
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "never")
    queue = Queue(config, store)
    ids = [queue.enqueue(jobs.sleep_until_flag, side, flag, 60) for _ in range(3)]
    daemon = start_daemon("-n", "3", env={"DJ_GRACEFUL_TIMEOUT": "1"})
    daemon.wait_ready()
    wait_for(lambda: jobs.runs(side).count("started") == 3, what="3 jobs running")
    stopped = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, daemon.log()
    assert time.monotonic() - stopped < 1 + 5
    for job in map(store.get, ids):
        assert job.locked_by is None and job.attempts == 1 and job.failed_at is None
        assert job.last_error.startswith("killed after graceful_timeout (1s) on shutdown: worker testhost:")
        assert job.last_error.endswith("killed by SIGKILL (attempt 1)")
    assert jobs.runs(side) == ["started"] * 3


def test_sighup_changes_worker_count_without_interrupting_a_job(config, store, start_daemon, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    conf = tmp_path / "dj.conf"
    conf.write_text("[daemon]\nworkers = 1\n")
    daemon = start_daemon(env={"DJ_CONFIG": str(conf)})
    daemon.wait_ready()
    job_id = Queue(config, store).enqueue(jobs.sleep_then_record, side, 2.0)
    wait_for(lambda: "started" in jobs.runs(side), what="job started")
    conf.write_text("[daemon]\nworkers = 3\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: len(daemon.sent("READY=1")) == 2, what="READY=1 after reload")
    assert daemon.sent("RELOADING=1")
    assert len(daemon.worker_pids()) == 3
    assert jobs.runs(side) == ["started", "done"]  # the old worker finished its job before retiring
    wait_for(lambda: store.jobs() == [], what="job row deleted")
    assert "reload complete" in daemon.log()


def test_max_jobs_recycles_workers_and_every_job_completes(config, store, start_daemon, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue_many(queue.prepare(jobs.record_pid, side) for _ in range(100))
    daemon = start_daemon("-n", "1", env={"DJ_MAX_JOBS": "10"})
    wait_for(lambda: len(jobs.runs(side)) == 100, timeout=60, what="100 jobs")
    pids = Counter(jobs.runs(side))
    assert len(pids) == 10 and set(pids.values()) == {10}  # replaced 9 times
    wait_for(lambda: store.jobs() == [], what="queue empty")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0


def test_jobs_of_a_silent_worker_on_another_host_are_freed(config, store, start_daemon, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    job_id = Queue(config, store).enqueue(jobs.record, side, "rescued")
    store.register_worker("otherhost:4242", "otherhost", 4242)
    store.reserve("otherhost:4242", Filters()).jobs
    with store.engine.begin() as conn:
        conn.execute(update(wk).values(last_seen=utcnow() - timedelta(seconds=30)))
    start_daemon("-n", "1", env={"DJ_HEARTBEAT_INTERVAL": "0.2", "DJ_HEARTBEAT_TIMEOUT": "5"})
    wait_for(lambda: jobs.runs(side) == ["rescued"], what="job rescued")
    assert [w["hostname"] for w in store.workers()] == ["testhost"]


def test_usr2_logs_a_status_dump(start_daemon) -> None:
    daemon = start_daemon("-n", "2")
    daemon.wait_ready()
    daemon.signal(signal.SIGUSR2)
    wait_for(lambda: "status: 2 workers" in daemon.log(), what="status dump")
    # the dump is a log line per worker after its heading: read once the last one is there
    wait_for(lambda: daemon.log().count("  worker testhost:") >= 2, what="a line per worker")
    assert daemon.log().count("  worker testhost:") == 2


def test_max_rss_recycles_a_worker_between_jobs(config, store, start_daemon, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    queue.enqueue_many(queue.prepare(jobs.record_pid, side) for _ in range(4))
    start_daemon("-n", "1", env={"DJ_MAX_RSS": "1"})  # 1 MiB: every worker is over it after a job
    wait_for(lambda: len(jobs.runs(side)) == 4, what="4 jobs")
    assert len(set(jobs.runs(side))) == 4  # a fresh worker for each job


def test_workers_dying_at_boot_are_respawned_with_backoff(start_daemon) -> None:
    daemon = start_daemon("-n", "1", env={"DJ_SESSION_FACTORY": "tests.no_such_module:factory"})
    time.sleep(4)
    spawned = daemon.log().count("spawned worker")
    assert 2 <= spawned <= 5, daemon.log()  # 0.5 s, 1 s, 2 s ... between attempts, not a busy loop
    assert "died young" in daemon.log() and "cannot import tests.no_such_module:factory" in daemon.log()
    assert daemon.proc.poll() is None
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(20) == 0


def test_jobs_a_killed_worker_finished_are_not_run_again(config, store, start_daemon, tmp_path) -> None:
    """Finished jobs are deleted with the next reservation; if the worker dies first, the supervisor
    deletes the ones it reported done instead of releasing them."""
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "killed")
    queue = Queue(config, store)
    queue.enqueue_many(queue.prepare(jobs.record, side, n, priority=0) for n in range(60))
    killer = queue.enqueue(jobs.kill_own_worker_once, side, flag, priority=1)
    start_daemon("-n", "1")
    wait_for(lambda: jobs.runs(side).count("kill-job") == 2 and store.jobs() == [], what="all done")
    runs = jobs.runs(side)
    assert sorted(int(r) for r in runs if r != "kill-job") == list(range(60))  # none ran twice
    assert runs.count("kill-job") == 2


def test_idle_workers_are_woken_by_a_local_enqueue_and_by_the_poll(config, store, start_daemon, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    daemon = start_daemon("-n", "2", env={"DJ_SLEEP_DELAY": "600", "DJ_POLL_INTERVAL": "600"})
    daemon.wait_ready()
    time.sleep(0.5)  # both workers idle, waiting to be woken
    Queue(config, store).enqueue(jobs.record, side, "nudged")  # same host: a nudge wakes them
    wait_for(lambda: jobs.runs(side) == ["nudged"], what="nudged job run")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    polled = start_daemon("-n", "1", env={"DJ_SLEEP_DELAY": "600", "DJ_POLL_INTERVAL": "0.2"})
    polled.wait_ready()
    time.sleep(0.5)
    store.insert([Queue(config, store).prepare(jobs.record, side, "polled")])  # no nudge: as from another host
    wait_for(lambda: jobs.runs(side) == ["nudged", "polled"], what="polled job run")


def test_a_job_enqueued_while_a_worker_reserves_is_not_left_for_the_next_poll(config, store, start_daemon,
                                                                              tmp_path: Path) -> None:
    """A nudge that comes while a worker reserves wakes it too. Its reservation may have read the
    queue before the job was committed, and were it woken only once waiting, it would wait for the
    next poll (half a second by default; 600 s here): the bench's pickups of 25 jobs had one of
    505 ms now and then. The worker is held (``hold_after_transaction``) after a reservation that
    found nothing, the job is enqueued (committed, nudged) and the supervisor hears of it then."""
    side, hold = str(tmp_path / "runs.txt"), tmp_path / "hold"
    daemon = start_daemon("-n", "1", env={"DJ_SLEEP_DELAY": "600", "DJ_POLL_INTERVAL": "600",
                                          "DJ_PLUGINS": "tests.process.hold_after_transaction:plugin",
                                          "DJ_TEST_HOLD_DIR": str(tmp_path)})
    daemon.wait_ready()
    time.sleep(0.5)  # idle, waiting to be woken
    hold.touch()
    nudges = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nudges.sendto(b"!", nudge.address(config))  # a nudge with nothing behind it: a reservation that finds nothing
    nudges.close()
    wait_for((tmp_path / "held").exists, what="the worker held after its reservation")
    Queue(config, store).enqueue(jobs.record, side, "raced")  # committed, then nudged
    time.sleep(0.5)  # the supervisor has heard the nudge, while the worker is not waiting
    hold.unlink()
    wait_for(lambda: jobs.runs(side) == ["raced"], timeout=10, what="the job enqueued during the reservation run")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, daemon.log()


def test_json_log_format_writes_one_object_per_line(config, store, start_daemon, tmp_path: Path) -> None:
    """``log_format = json`` from the supervisor and its workers alike, job lines with the job's fields."""
    side = str(tmp_path / "runs.txt")
    daemon = start_daemon("-n", "1", env={"DJ_LOG_FORMAT": "json"})
    daemon.wait_ready()
    job_id = Queue(config, store).enqueue(jobs.record, side, "x", queue="mail")
    wait_for(lambda: '"job done' in daemon.log(), what="job done logged")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    lines = [json.loads(line) for line in daemon.log().splitlines()]
    done = next(line for line in lines if line["message"].startswith("job done"))
    assert {k: done[k] for k in ("job_id", "job_class", "queue", "attempt", "host")} == \
        {"job_id": job_id, "job_class": "tests.jobs:record", "queue": "mail", "attempt": 1, "host": "testhost"}
    assert done["duration"] >= 0 and {line["logger"] for line in lines} >= {"dj_daemon.supervisor", "dj_daemon.worker"}
