"""``delayed_job work`` as a real subprocess receiving real signals."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from dj_daemon.api import Queue
from tests import jobs
from tests.conftest import bin_path


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([bin_path("delayed_job"), "work"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_sigterm_lets_the_job_in_hand_finish(config, store, subprocess_env, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    Queue(config, store).enqueue(jobs.sleep_then_record, side, 1.0)
    Queue(config, store).enqueue(jobs.record, side, "second")
    proc = start_worker(subprocess_env)
    try:
        wait_for(lambda: "started" in jobs.runs(side))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert jobs.runs(side) == ["started", "done"]  # finished, and took no new job after TERM
    assert [j.name for j in store.jobs()] == ["tests.jobs:record"]


def test_second_interrupt_stops_the_job_and_releases_it(config, store, subprocess_env, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    job_id = Queue(config, store).enqueue(jobs.sleep_then_record, side, 30)
    proc = start_worker(subprocess_env)
    try:
        wait_for(lambda: "started" in jobs.runs(side))
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == ("delayed_job: error: interrupted by SIGINT: the job in hand was "
                                            "stopped and released, an attempt counted"), err
    assert [line for line in err.splitlines() if "error" in line.lower()] == err.strip().splitlines()[-1:], err
    job = store.get(job_id)
    assert job.locked_by is None and job.attempts == 1
    assert job.last_error.startswith("WorkerInterrupted: interrupted by SIGINT")
    assert jobs.runs(side) == ["started"]
