"""``Job.reserved``, the reservation's way to build a job, makes the constructor's job."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dj_daemon.job import Job


def test_a_reserved_job_is_the_constructors_job() -> None:
    run_at, now = datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 1, 2, 3, 4, 6)
    built = Job.reserved(7, -3, 2, '{"target": "tests.jobs:record"}', "mail", run_at, now, "h:1", "@key")
    constructed = Job(7, -3, 2, '{"target": "tests.jobs:record"}', "mail", run_at, now, "h:1", strand="@key")
    assert built == constructed and hash(built) == hash(constructed) and vars(built) == vars(constructed)
    assert replace(built, unique_key="k").unique_key == "k" and built.unique_key is None
    assert Job.reserved(8, 0, 0, "{}", None, run_at, now, "h:1", None).strand is None  # no state shared
