"""The ``delayed_job`` CLI through its installed entry point: verbs, one-line errors, exit codes."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dj_daemon.api import Queue
from tests import jobs
from tests.conftest import ROOT, bin_path
from tests.unit.test_config import REFUSED


def dj(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("delayed_job"), *args], env=env, capture_output=True, text=True, timeout=60,
                          cwd=cwd)


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """No DJ_* variable at all, and an empty working folder: the defaults, as a new user has them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJ_")}
    return {**env, "PYTHONPATH": str(ROOT), "DJ_CONFIG": str(tmp_path / "empty.conf")}


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("delayed_job: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_failed_job_is_listed_shown_and_retried(config, store, subprocess_env, tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    env = {**subprocess_env, "DJ_MAX_ATTEMPTS": "3", "DJ_BACKOFF_SCALE": "0"}
    job_id = Queue(config, store).enqueue(jobs.always_fails, side)
    result = dj(env, "workoff")
    assert result.returncode == 1 and result.stdout.startswith("0 jobs completed at ")
    assert result.stdout.endswith(" j/s, 1 failed (3 failed runs)\n"), result.stdout  # one job, run three times
    failed = store.get(job_id)
    assert (failed.attempts, failed.failed_at is not None) == (3, True)
    assert "ValueError: this job always fails" in failed.last_error
    listing = dj(env, "jobs", "list", "--failed")
    assert f"{job_id:>8} failed" in listing.stdout and "ValueError: this job always fails" in listing.stdout
    assert "Traceback" not in listing.stdout
    assert "last_error: ValueError: this job always fails" in dj(env, "jobs", "show", str(job_id)).stdout
    assert dj(env, "jobs", "retry", str(job_id)).returncode == 0
    dj(env, "workoff")
    assert jobs.runs(side) == ["ran"] * 6  # the retry ran it again, max_attempts more times


def test_workoff_reports_rate_and_clear_deletes(config, store, subprocess_env, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    for n in range(3):
        queue.enqueue(jobs.record, side, n)
    result = dj(subprocess_env, "workoff")
    assert result.returncode == 0 and result.stdout.startswith("3 jobs completed at ") and " j/s" in result.stdout
    queue.enqueue(jobs.noop, queue="a")
    queue.enqueue(jobs.noop, queue="b")
    assert dj(subprocess_env, "clear", "--queue", "a", "--yes").stdout.strip() == "deleted 1 job"
    assert dj(subprocess_env, "jobs", "delete", str(store.jobs()[0].id)).returncode == 0
    assert store.jobs() == []


def test_enqueue_command_and_db_init(config, store, subprocess_env, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    assert dj(subprocess_env, "db", "init").returncode == 0
    result = dj(subprocess_env, "enqueue", "tests.jobs:record", f'["{side}", "from-cli"]', "--queue", "q")
    assert result.returncode == 0 and result.stdout.startswith("enqueued job ")
    dj(subprocess_env, "workoff")
    assert jobs.runs(side) == ["from-cli"]


@pytest.mark.parametrize("args, fragments", [
    (["jobs", "show", "987654"], ["no job with id 987654"]),
    (["jobs", "retry", "987654"], ["no job with id 987654"]),
    (["jobs", "delete", "987654"], ["no job with id 987654"]),
    (["enqueue", "tests.nope:run"], ["cannot import tests.nope:run"]),
    (["enqueue", "os:system", '["id"]'], ["not in allowed_modules"]),
    (["enqueue", "tests.jobs:record", "[not json"], ["not JSON"]),
])
def test_operator_mistakes_are_one_line(store, subprocess_env, args, fragments) -> None:
    assert_one_line_error(dj(subprocess_env, *args), *fragments)


def test_bad_config_and_database_errors_are_one_line(subprocess_env, tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("[jobs]\nmax_attemps = 3\n")
    assert_one_line_error(dj(subprocess_env, "--config", str(bad), "check"), "unknown key 'max_attemps'",
                          "did you mean 'max_attempts'")
    bad.write_text("[databse]\nurl = sqlite://\n")
    assert_one_line_error(dj(subprocess_env, "--config", str(bad), "check"), "unknown section [databse]")
    assert_one_line_error(dj({**subprocess_env, "DJ_DATABASE_URL": "nonsense"}, "check"), "malformed database url")
    unreachable = {**subprocess_env, "DJ_DATABASE_URL": "mysql+pymysql://root:s3cret-pw@127.0.0.1:1/x"}
    result = dj(unreachable, "check")
    assert_one_line_error(result, "mysql+pymysql://root:***@127.0.0.1:1/x", "Can't connect")
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert_one_line_error(dj({**subprocess_env, "DJ_MAX_ATTEMPTS": "abc"}, "check"), "invalid value 'abc'")


def test_wrong_password_is_not_echoed(mysql_server, subprocess_env) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(mysql_server).set(username="dj_nobody", password="hunter2-secret")
    env = {**subprocess_env, "DJ_DATABASE_URL": url.render_as_string(hide_password=False)}
    result = dj(env, "check")
    assert_one_line_error(result, "Access denied", "dj_nobody:***@")
    assert "hunter2-secret" not in result.stderr + result.stdout


@pytest.mark.parametrize("env, fragment", [
    *REFUSED, ({"DJ_POOLS": "zenodo:x"}, "pool 'zenodo:x': worker count 'x' is not a number")])
def test_check_refuses_what_would_fail_later(bare_env, tmp_path: Path, env, fragment) -> None:
    (tmp_path / "empty.conf").write_text("")
    assert_one_line_error(dj({**bare_env, **env}, "check", cwd=tmp_path), fragment)


@pytest.mark.parametrize("command", [["workoff"], ["run"]])
def test_workers_and_daemon_refuse_a_bad_value_at_start(bare_env, tmp_path: Path, command) -> None:
    (tmp_path / "empty.conf").write_text("")
    db = tmp_path / "dj.sqlite3"
    env = {**bare_env, "DJ_DATABASE_URL": f"sqlite:///{db}", "DJ_MAX_RUN_TIME": "inf"}
    assert dj(env, "db", "init").returncode == 1  # the same check, before anything is created
    assert_one_line_error(dj(env, *command), "max_run_time must be above 0")
    assert not db.exists()


def test_check_creates_no_database_file(bare_env, tmp_path: Path) -> None:
    (tmp_path / "empty.conf").write_text("")
    result = dj(bare_env, "check", cwd=tmp_path)
    assert_one_line_error(result, "database file delayed_job.sqlite3 of sqlite:///delayed_job.sqlite3 "
                          "does not exist", "delayed_job db init")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.conf"]


def test_check_and_run_name_the_metrics_extra(bare_env, tmp_path: Path) -> None:
    """prometheus_client made unimportable by a stand-in first on the path, as on a host without it."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "prometheus_client.py").write_text("raise ImportError('No module named prometheus_client')\n")
    (tmp_path / "empty.conf").write_text("")
    env = {**bare_env, "PYTHONPATH": f"{shadow}{os.pathsep}{ROOT}",
           "DJ_DATABASE_URL": f"sqlite:///{tmp_path}/dj.sqlite3"}
    assert dj(env, "db", "init").returncode == 0
    assert dj(env, "check").returncode == 0  # metrics off: prometheus_client is not needed
    for extra in ({"DJ_METRICS_PORT": "9464"}, {"DJ_METRICS_TEXTFILE": str(tmp_path / "dj.prom")}):
        for command in ("check", "run"):
            assert_one_line_error(dj({**env, **extra}, command), "prometheus_client cannot be imported",
                                  "pip install 'dj-daemon[metrics]'")
