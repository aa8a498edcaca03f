"""A queue count past its cap reads "10,000+" wherever an operator sees it: ``long_jobs status``
(text and JSON) and ``delayed_job check``, through the installed commands."""
from __future__ import annotations

import json
from datetime import timedelta

from dj_daemon.job import utcnow
from dj_daemon.store import COUNT_CAP, Store
from tests.cli.test_delayed_job_cli import dj
from tests.long_jobs.conftest import long_jobs
from tests.store.test_stored_rows import stored


def test_counts_past_the_cap_say_at_least(store: Store, subprocess_env: dict[str, str]) -> None:
    stored(store, COUNT_CAP + 1, utcnow() + timedelta(days=1))
    stored(store, 3, utcnow() - timedelta(days=1), failed=True)
    status = long_jobs(subprocess_env, "status")
    assert "work queue: 10,000+ waiting, 0 running, 3 failed" in status.stdout.splitlines(), status.stdout
    snapshot = json.loads(long_jobs(subprocess_env, "status", "--json").stdout)
    assert snapshot["queue"] == {"waiting": COUNT_CAP, "running": 0, "failed": 3}
    assert snapshot["queue_at_least"] == ["waiting"]
    check = dj(subprocess_env, "check")
    assert check.returncode == 0 and f"{store.safe_url}: 10,000+ waiting, 0 running, 3 failed" in check.stdout


def test_exact_counts_stay_plain(store: Store, subprocess_env: dict[str, str]) -> None:
    stored(store, 2, utcnow() + timedelta(days=1))
    snapshot = json.loads(long_jobs(subprocess_env, "status", "--json").stdout)
    assert snapshot["queue"] == {"waiting": 2, "running": 0, "failed": 0} and snapshot["queue_at_least"] == []
    assert "work queue: 2 waiting, 0 running, 0 failed" in long_jobs(subprocess_env, "status").stdout
