"""``workoff`` and ``work --exit-on-complete`` end on a database that cannot serve them.

An error no wait can fix (no table, no database, bad credentials) ends them at
once; an outage ends them after ``database_patience``. Either way: one line on
stderr, a non-zero exit, and no outcome lost. The subprocess timeout is only a
hang guard (before this, such a run waited for ever).
"""
from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dj_daemon.api import Queue
from tests import jobs
from tests.cli.test_delayed_job_cli import assert_one_line_error
from tests.conftest import SERVERS, bin_path
from tests.faults.test_db_outage import relay  # noqa: F401 (the fixture: MariaDB behind a TCP relay)
from tests.process.daemon import wait_for

HANG_GUARD_S = 60
#: For tests that name their own database URL: the fixtures' one dialect is enough.
ONE_DIALECT = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def dj(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("delayed_job"), *args], env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


def last_line_is_the_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """For a run that logged while it waited: the error is its one error line, and the last."""
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("delayed_job: error: ")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def with_url(env: dict[str, str], url: str, **more: str) -> dict[str, str]:
    return {**env, "DJ_DATABASE_URL": url, **more}


@ONE_DIALECT
@pytest.mark.parametrize("command", [["workoff"], ["work", "--exit-on-complete"]])
def test_sqlite_file_without_tables_ends_at_once(subprocess_env, tmp_path: Path, command) -> None:
    env = with_url(subprocess_env, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert_one_line_error(dj(env, *command), "no such table", "delayed_job db init")


@ONE_DIALECT
def test_sqlite_file_in_a_missing_folder_ends_at_once(subprocess_env, tmp_path: Path) -> None:
    env = with_url(subprocess_env, f"sqlite:///{tmp_path / 'nowhere' / 'queue.sqlite3'}")
    assert_one_line_error(dj(env, "workoff"), "unable to open database file")


@ONE_DIALECT
def test_unknown_mariadb_database_ends_at_once(mysql_server, subprocess_env) -> None:
    missing = f"dj_missing_{uuid.uuid4().hex[:8]}"
    env = with_url(subprocess_env, make_url(mysql_server).set(database=missing).render_as_string(False))
    assert_one_line_error(dj(env, "workoff"), f"Unknown database '{missing}'")


@ONE_DIALECT
def test_bad_credentials_end_at_once(mysql_server, subprocess_env) -> None:
    url = make_url(mysql_server).set(username="dj_nobody", password="hunter2-secret", database="mysql")
    result = dj(with_url(subprocess_env, url.render_as_string(hide_password=False)), "workoff")
    assert_one_line_error(result, "Access denied", "dj_nobody:***@")
    assert "hunter2-secret" not in result.stderr + result.stdout


@ONE_DIALECT
def test_nothing_listening_ends_after_the_patience(subprocess_env) -> None:
    with socket.socket() as probe:  # a port just freed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = with_url(subprocess_env, f"mysql+pymysql://root:s3cret-pw@127.0.0.1:{port}/x",
                   DJ_DATABASE_PATIENCE="2")
    result = dj(env, "workoff")
    last_line_is_the_error(result, "Can't connect", "still failing after database_patience: 2s")
    assert "retrying for up to 2s" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def workoff_cut_mid_job(config, store, env: dict[str, str], relay, tmp_path: Path,
                        *args: str) -> tuple[int, subprocess.CompletedProcess, dict[str, str]]:
    """``workoff *args`` through ``relay`` with 2 s of patience, the relay cut while its one job
    (recording to ``runs.txt``) runs, then the job let end: the job's id, the run, its env."""
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "flag")
    job_id = Queue(config, store).enqueue(jobs.sleep_until_flag, side, flag, 60)
    relayed = make_url(config.url).set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    relayed_env = with_url(env, relayed, DJ_DATABASE_PATIENCE="2")
    proc = subprocess.Popen([bin_path("delayed_job"), "workoff", *args], env=relayed_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: "started" in jobs.runs(side), what="the job started")
        relay.cut()
        Path(flag).touch()
        out, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        proc.kill()
    return job_id, subprocess.CompletedProcess(proc.args, proc.returncode, out, err), relayed_env


@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_outage_mid_run_keeps_the_outcome_with_the_lock(config, store, subprocess_env, relay, tmp_path) -> None:
    """The database goes away while a job runs: workoff gives up after its patience, and the
    job it finished is neither lost nor marked done: its row stays locked by that worker."""
    side = str(tmp_path / "runs.txt")
    job_id, result, _ = workoff_cut_mid_job(config, store, subprocess_env, relay, tmp_path)
    assert jobs.runs(side) == ["started", "done"]
    line = last_line_is_the_error(result, "still failing after database_patience: 2s", "their outcome not written",
                                  "stay locked until max_run_time passes, then run again")
    job = store.get(job_id)
    assert job.locked_by is not None and job.locked_by in line
    assert (job.attempts, job.failed_at) == (0, None)


def test_work_exit_on_complete_exits_once_the_queue_is_empty(config, store, subprocess_env, tmp_path) -> None:
    side = str(tmp_path / "runs.txt")
    for n in range(3):
        Queue(config, store).enqueue(jobs.record, side, n)
    result = dj(subprocess_env, "work", "--exit-on-complete")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stopped after 3 jobs completed, 0 failed"
    assert jobs.runs(side) == ["0", "1", "2"] and store.jobs() == []


@ONE_DIALECT
def test_database_patience_is_validated(subprocess_env) -> None:
    assert_one_line_error(dj({**subprocess_env, "DJ_DATABASE_PATIENCE": "-1"}, "check"),
                          "database_patience must be at least 0")
