"""Jobs for the migration table's walk (tests/compat/test_migration_table.py): one per row kind."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dj_daemon import job
from tests.jobs import record


class Mailer:
    """A receiver for ``delay(obj).method(...)``: its attributes travel as JSON."""

    def __init__(self, path: str) -> None:
        self.path = path

    def deliver(self, token: str) -> None:
        record(self.path, token)


@job(queue="mail")
def send_mail(path: str, token: str) -> None:
    record(path, token)


class NewsletterJob:
    """delayed_job's custom job, with every per-job setting its README names."""

    max_attempts = 3
    max_run_time = 120
    destroy_failed_jobs = True
    queue_name = "newsletter"
    priority = 10

    def __init__(self, path: str, fail: bool = False) -> None:
        self.path, self.fail = path, fail

    def perform(self) -> None:
        record(self.path, "perform")
        if self.fail:
            raise RuntimeError("newsletter failed")

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(hours=attempts)

    def enqueue(self, job: Any) -> None:
        record(self.path, "enqueue")

    def before(self, job: Any) -> None:
        record(self.path, "before")

    def after(self, job: Any) -> None:
        record(self.path, "after")

    def success(self, job: Any) -> None:
        record(self.path, "success")

    def error(self, job: Any, exc: BaseException) -> None:
        record(self.path, "error")

    def failure(self, job: Any) -> None:
        record(self.path, "failure")


class KeptNewsletterJob(NewsletterJob):
    """The same job, its failures kept for inspection (``destroy_failed_jobs? false``)."""

    destroy_failed_jobs = False
