"""A job cut mid-run by a second interrupt goes back to its place in the queue, attempt counted."""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from dj_daemon.api import Queue
from dj_daemon.worker import Worker
from tests import jobs
from tests.conftest import bin_path
from tests.process.daemon import wait_for


def test_an_interrupted_job_runs_before_the_backlog_enqueued_after_it(config, store, subprocess_env,
                                                                       tmp_path: Path) -> None:
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "flag")
    queue = Queue(config, store)
    job_id = queue.enqueue(jobs.sleep_until_flag, side, flag, 60)
    enqueued_at = store.get(job_id).run_at
    proc = subprocess.Popen([bin_path("delayed_job"), "work"], env=subprocess_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: jobs.runs(side) == ["started"], what="the long job running")
        backlog = [f"b{n}" for n in range(5)]
        for token in backlog:
            queue.enqueue(jobs.record, side, token)
        while proc.poll() is None:  # the first INT asks it to stop, the next cuts the job
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    job = store.get(job_id)
    assert (job.attempts, job.locked_by, job.run_at) == (1, None, enqueued_at)
    Path(flag).touch()
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert jobs.runs(side) == ["started", "started", "done", *backlog]
