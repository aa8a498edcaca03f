"""A Django task shows under its task's name, and the worker's log clock stays on one zone.

The real daemon runs a failing task (one retry); its log lines, its metric
labels and ``delayed_job jobs list`` name the task (``...tasks:fails``), not
the runner that performs it. The daemon starts in Asia/Tokyo with
``display_timezone = local``; loading the Django project sets ``TZ`` to the
project's ``TIME_ZONE`` (Chicago) mid-run, and no log line may follow it.
"""
from __future__ import annotations

import re
import subprocess

from tests.conftest import bin_path
from tests.process.daemon import Daemon, wait_for
from tests.process.test_metrics import free_port, scrape, total

TASK = "tests.django.taskapp.tasks:fails"
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}(\S+) ", re.MULTILINE)


def test_a_task_is_named_in_logs_metrics_and_lists_and_the_log_clock_holds(project, tasks) -> None:
    port = free_port()
    env = {**project.env, "TZ": "Asia/Tokyo", "DJ_DISPLAY_TIMEZONE": "local"}
    daemon = Daemon({**env, "DJ_QUEUES": "mail", "DJ_METRICS_PORT": str(port)}, "-n", "1")
    try:
        daemon.wait_ready()
        enqueued = project.task(tasks.fails.using(queue_name="mail")).enqueue("boom")
        job_id = int(enqueued.id.partition(".")[0])
        wait_for(lambda: "job failed for good" in daemon.log(), 30, "the task failed twice")
        log = daemon.log()
        assert f"job failed, retry at " in log and f"id={job_id} {TASK} queue=mail attempt=1" in log, log
        assert f"job failed for good id={job_id} {TASK} queue=mail attempt=2" in log, log
        assert "TaskRun" not in log, log
        assert set(STAMP.findall(log)) == {"+09:00"}, log  # Tokyo throughout, though Django set TZ to Chicago
        assert re.search(r"retry at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+09:00 ", log), log
        wait_for(lambda: total(scrape(port), "delayed_job_jobs_failed_total", job_class=TASK) == 1,
                 what="the failure counted under the task's name")
        assert total(scrape(port), "delayed_job_jobs_retried_total", job_class=TASK) == 1
    finally:
        daemon.close()
    listed = subprocess.run([bin_path("delayed_job"), "jobs", "list", "--queue", "mail"], env=env,
                            capture_output=True, text=True, timeout=60)
    line = next(line for line in listed.stdout.splitlines() if line.split()[0] == str(job_id))
    assert line.split()[1] == "failed" and f"+09:00 {TASK}  ValueError: boom" in line, listed.stdout
