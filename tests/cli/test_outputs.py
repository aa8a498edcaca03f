"""``delayed_job`` as an operator reads it: ``clear`` asks first, counts take their noun in the right
number, ``jobs show`` prints ``-`` for an empty column, times are marked in the one display zone."""
from __future__ import annotations

import subprocess
from datetime import datetime

from dj_daemon.api import Queue
from tests import jobs
from tests.cli.test_delayed_job_cli import assert_one_line_error, dj
from tests.conftest import bin_path
from tests.terminal import run_on_terminal


def test_clear_without_a_terminal_needs_yes(config, store, subprocess_env) -> None:
    """A script or cron job cannot answer: one line says what to pass, and nothing is deleted."""
    Queue(config, store).enqueue(jobs.noop)
    refused = subprocess.run([bin_path("delayed_job"), "clear"], env=subprocess_env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)
    assert_one_line_error(refused, "clear deletes every job that is not running: pass --yes to confirm")
    assert len(store.jobs()) == 1
    assert dj(subprocess_env, "clear", "--yes").stdout == "deleted 1 job\n"
    assert store.jobs() == []


def test_clear_on_a_terminal_asks_first(config, store, subprocess_env) -> None:
    queue = Queue(config, store)
    queue.enqueue(jobs.noop, queue="a")
    queue.enqueue(jobs.noop, queue="a")
    queue.enqueue(jobs.noop, queue="b")
    code, text = run_on_terminal([bin_path("delayed_job"), "clear", "--queue", "a"], subprocess_env, answer="n\n")
    assert code == 1 and "Delete every job of queue 'a' that is not running from " in text, text
    assert "delayed_job: error: nothing deleted" in text and len(store.jobs()) == 3
    code, text = run_on_terminal([bin_path("delayed_job"), "clear", "--queue", "a"], subprocess_env, answer="y\n")
    assert code == 0 and text.endswith("deleted 2 jobs\r\n"), text
    assert [job.queue for job in store.jobs()] == ["b"]


def test_show_prints_a_dash_for_no_queue_and_times_marked(config, store, subprocess_env) -> None:
    job_id = Queue(config, store).enqueue(jobs.noop, run_at=datetime(2030, 1, 2, 3, 4, 5))
    shown = dj(subprocess_env, "jobs", "show", str(job_id)).stdout
    for line in ("     queue: -", " locked_by: -", " locked_at: -", " failed_at: -",
                 "    run_at: 2030-01-02 03:04:05Z"):
        assert f"\n{line}\n" in shown, shown
    listed = dj(subprocess_env, "jobs", "list").stdout.splitlines()
    assert listed[1].split()[2] == "-" and " 2030-01-02 03:04:05Z tests.jobs:noop" in listed[1], listed
    tokyo = {**subprocess_env, "TZ": "Asia/Tokyo", "DJ_DISPLAY_TIMEZONE": "local"}
    assert "    run_at: 2030-01-02 12:04:05+09:00\n" in dj(tokyo, "jobs", "show", str(job_id)).stdout
    assert " 2030-01-02 12:04:05+09:00 tests.jobs:noop" in dj(tokyo, "jobs", "list").stdout


def test_workoff_counts_one_job_and_one_failed_job_once(config, store, subprocess_env, tmp_path) -> None:
    """A job retried three times in one workoff is one failed job; its runs are told apart."""
    queue = Queue(config, store)
    queue.enqueue(jobs.record, str(tmp_path / "runs.txt"), 1)
    queue.enqueue(jobs.always_fails, str(tmp_path / "fails.txt"))
    done = dj({**subprocess_env, "DJ_MAX_ATTEMPTS": "3", "DJ_BACKOFF_SCALE": "0"}, "workoff")
    assert done.returncode == 1 and done.stdout.startswith("1 job completed at "), done.stdout
    assert done.stdout.endswith(" j/s, 1 failed (3 failed runs)\n"), done.stdout


def fails_the_first_time(path: str) -> None:
    jobs.record(path, "ran")
    if len(jobs.runs(path)) == 1:
        raise RuntimeError("the first run fails")


def test_workoff_does_not_count_a_job_that_failed_then_succeeded(config, store, subprocess_env, tmp_path) -> None:
    """Its first run fails, its retry succeeds in the same workoff: no job failed, one run did."""
    side = str(tmp_path / "runs.txt")
    Queue(config, store).enqueue(fails_the_first_time, side)
    done = dj({**subprocess_env, "DJ_BACKOFF_SCALE": "0"}, "workoff")
    assert done.returncode == 0 and done.stdout.startswith("1 job completed at "), done.stdout
    assert done.stdout.endswith(" j/s, 0 failed (1 failed run)\n"), done.stdout
    assert jobs.runs(side) == ["ran", "ran"]
