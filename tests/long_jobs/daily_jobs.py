"""Jobs for the day-to-day tests: a copy that keeps failing until a flag exists, a long submission."""
from __future__ import annotations

from dj_daemon import job
from tests.jobs import fails_until_file_exists, sleep_until_flag


@job(track="dataset_id", gate="defer", backoff=3600)
def copy_failing_until_flag(path: str, dataset_id: int, flag: str) -> None:
    """A tracked copy that fails (its next try an hour later) until ``flag`` exists."""
    fails_until_file_exists(path, flag)


@job(track="dataset_id", gate="hold", queue="submissions")
def submission_until_flag(path: str, dataset_id: int, flag: str) -> None:
    """A long submission (hold gate) that ends when ``flag`` exists (at most 60 s)."""
    sleep_until_flag(path, flag, 60)
