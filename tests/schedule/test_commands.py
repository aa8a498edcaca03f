"""``delayed_job check`` refuses a bad schedule in one line; ``delayed_job schedule`` and ``long_jobs
status`` list the entries, from the file and from code, with their last and next runs."""
from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from dj_daemon.config import load_config
from dj_daemon.schedule import Scheduler
from dj_daemon.store import Store
from dj_daemon.store import recurring as runs
from tests.cli.test_delayed_job_cli import assert_one_line_error, dj
from tests.conftest import bin_path

GOOD = "[schedule:tick]\ninterval = 30s\ntarget = tests.schedule.recurring_jobs:record\nargs = [\"/dev/null\"]\n"


def with_file(env: dict[str, str], tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "schedule.conf"
    path.write_text(text)
    return {**env, "DJ_CONFIG": str(path)}


@pytest.mark.parametrize("text, fragments", [
    (GOOD.replace("interval = 30s", "cron = 61 * * * *"), ("[schedule:tick]", "invalid cron expression")),
    (GOOD.replace(":record", ":nowhere"),
     ("schedule entry 'tick'", "cannot import tests.schedule.recurring_jobs:nowhere")),
    (GOOD + "timezone = Europe/Atlantis\n", ("[schedule:tick]", "unknown time zone 'Europe/Atlantis'")),
    (GOOD.replace("tests.schedule", "os.path"), ("schedule entry 'tick'", "not in allowed_modules")),
    (GOOD + "[jobs]\nschedule_modules = json\n", ("schedule_modules: json is not in allowed_modules",)),
    (GOOD.replace("args = [\"/dev/null\"]", "args = /dev/null"), ("[schedule:tick]", "args is not JSON")),
])
def test_check_refuses_a_bad_schedule_in_one_line(subprocess_env, tmp_path: Path, text: str,
                                                  fragments: tuple[str, ...]) -> None:
    assert_one_line_error(dj(with_file(subprocess_env, tmp_path, text), "check"), *fragments)


def test_schedule_lists_file_and_code_entries_with_last_and_next_runs(store: Store, subprocess_env,
                                                                      tmp_path: Path) -> None:
    env = with_file(subprocess_env, tmp_path, GOOD + "[jobs]\nschedule_modules = tests.schedule.recurring_jobs\n")
    assert dj(env, "check").returncode == 0
    scheduler = Scheduler(load_config(env["DJ_CONFIG"], env=env))
    last = store.clock().replace(microsecond=0) - timedelta(minutes=3)
    job_id = runs.enqueue(store, "tick", last, scheduler.planned[0].job(scheduler.queue), "host-a")
    listing = dj(env, "schedule")
    assert listing.returncode == 0, listing.stderr
    tick, declared = listing.stdout.splitlines()[1:]
    assert tick.split()[:5] == ["tick", "every", "30s", "skip", f"{last:%Y-%m-%d}"]
    assert f"{last:%H:%M:%S}Z {job_id:>8} " in tick and tick.endswith("tests.schedule.recurring_jobs:record")
    assert declared.startswith("tests-every-five-minutes cron */5 * * * *") and " never " in declared
    status = subprocess.run([bin_path("long_jobs"), "status"], env=env, capture_output=True, text=True, timeout=60)
    section = status.stdout.split("recurring jobs:\n", 1)[1].splitlines()
    assert section[0].split()[:2] == ["tick", "every"] and "on host-a" in section[0]
    assert section[1].startswith("  tests-every-five-minutes") and "last -" in section[1]
