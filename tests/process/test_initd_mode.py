"""init.d mode: ``delayed_job start|status|stop`` through a pidfile, daemonized with python-daemon."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from dj_daemon.api import Queue
from dj_daemon.daemonize import read_pid
from dj_daemon.processes import children_of
from tests import jobs
from tests.conftest import bin_path
from tests.process.daemon import kill_daemon_of, wait_for

ROOT = Path(__file__).resolve().parents[2]


def dj(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("delayed_job"), *args], env=env, capture_output=True, text=True, timeout=90)


@pytest.fixture
def paths(tmp_path: Path):
    pidfile, log_file = tmp_path / "run" / "dj.pid", tmp_path / "log" / "dj.log"
    yield str(pidfile), str(log_file)
    kill_daemon_of(str(pidfile))


def test_start_status_stop_through_the_pidfile(config, store, subprocess_env, paths, tmp_path) -> None:
    pidfile, log_file = paths
    side = str(tmp_path / "runs.txt")
    started = dj(subprocess_env, "start", "-n", "2", "--pidfile", pidfile, "--log-file", log_file)
    assert started.returncode == 0, started.stderr
    pid = read_pid(pidfile)
    assert started.stdout.strip() == f"delayed_job started (pid {pid})"
    status = dj(subprocess_env, "status", "--pidfile", pidfile)
    assert (status.returncode, status.stdout.strip()) == (0, f"delayed_job is running (pid {pid})")
    again = dj(subprocess_env, "start", "--pidfile", pidfile, "--log-file", log_file)
    assert again.returncode == 1 and "already running" in again.stderr
    for n in range(10):
        Queue(config, store).enqueue(jobs.record, side, n)
    wait_for(lambda: len(jobs.runs(side)) == 10, what="jobs run by the daemon")
    stopped = dj(subprocess_env, "stop", "--pidfile", pidfile)
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"delayed_job stopped (pid {pid})"
    assert not os.path.exists(pidfile)
    status = dj(subprocess_env, "status", "--pidfile", pidfile)
    assert (status.returncode, status.stdout.strip()) == (3, "delayed_job is not running")
    log = Path(log_file).read_text()
    assert "job done id=" in log and "supervisor" in log and "stopped" in log
    assert dj(subprocess_env, "stop", "--pidfile", pidfile).returncode == 0  # stopping a stopped daemon is fine


def test_status_of_a_dead_daemon_and_restart(store, subprocess_env, paths) -> None:
    pidfile, log_file = paths
    assert dj(subprocess_env, "start", "-n", "1", "--pidfile", pidfile, "--log-file", log_file).returncode == 0
    first = read_pid(pidfile)
    restarted = dj(subprocess_env, "restart", "-n", "1", "--pidfile", pidfile, "--log-file", log_file)
    assert restarted.returncode == 0, restarted.stderr
    second = read_pid(pidfile)
    assert second != first and "stopped" in restarted.stdout and "started" in restarted.stdout
    os.kill(second, signal.SIGKILL)  # as when the daemon dies; its workers follow it
    wait_for(lambda: dj(subprocess_env, "status", "--pidfile", pidfile).returncode == 1, what="dead status")
    # a stale pidfile does not block the next start
    assert dj(subprocess_env, "start", "-n", "1", "--pidfile", pidfile, "--log-file", log_file).returncode == 0
    assert dj(subprocess_env, "stop", "--pidfile", pidfile).returncode == 0


def test_a_stale_pidfile_whose_pid_another_process_took_is_not_the_daemon(store, subprocess_env, paths) -> None:
    """The daemon died (kill -9) and its pid went to another process (pids wrap): ``status`` says
    dead, ``stop`` leaves that process alone, ``start`` goes ahead."""
    pidfile, log_file = paths
    other = subprocess.Popen(["sleep", "120"])
    try:
        os.makedirs(os.path.dirname(pidfile), exist_ok=True)
        Path(pidfile).write_text(f"{other.pid}\n")
        status = dj(subprocess_env, "status", "--pidfile", pidfile)
        assert (status.returncode, status.stdout.strip()) == (
            1, f"delayed_job is not running, but pidfile {pidfile} remains (pid {other.pid})")
        stopped = dj(subprocess_env, "stop", "--pidfile", pidfile)
        assert stopped.returncode == 0 and "is not running" in stopped.stdout
        assert other.poll() is None  # not signalled
        started = dj(subprocess_env, "start", "-n", "1", "--pidfile", pidfile, "--log-file", log_file)
        assert started.returncode == 0, started.stderr
        assert read_pid(pidfile) != other.pid
        assert dj(subprocess_env, "stop", "--pidfile", pidfile).returncode == 0
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("args, fragment", [
    (["run", "-n", "0"], "'0' is not a number of workers (1 or more) or auto"),
    (["run", "-n", "abc"], "'abc' is not a number of workers (1 or more) or auto"),
    (["run", "--pool", "a:x"], "worker count 'x' is not a number"),
    (["start", "--pidfile", "/proc/nope/dj.pid"], "cannot create /proc/nope"),
    (["reload", "--pidfile", "/nonexistent/dj.pid"], "not running"),
])
def test_bad_daemon_arguments_are_one_line(subprocess_env, args, fragment) -> None:
    result = dj(subprocess_env, *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and fragment in lines[0], result.stderr


def test_initd_script_drives_the_real_daemon(config, store, subprocess_env, paths, tmp_path) -> None:
    pidfile, log_file = paths
    side = str(tmp_path / "runs.txt")
    env = {**subprocess_env, "DAEMON": bin_path("delayed_job"), "PIDFILE": pidfile, "LOGFILE": log_file,
           "WORKERS": "2", "DEFAULTS_FILE": str(tmp_path / "no-defaults")}
    script = str(ROOT / "init.d" / "delayed_job")

    def initd(verb: str) -> subprocess.CompletedProcess:
        return subprocess.run([script, verb], env=env, capture_output=True, text=True, timeout=90)

    assert initd("start").returncode == 0
    pid = read_pid(pidfile)
    again = initd("start")  # LSB: start on a running service succeeds
    assert (again.returncode, again.stdout.strip()) == (0, f"delayed_job is already running (pid {pid})")
    assert read_pid(pidfile) == pid
    assert initd("status").returncode == 0
    Queue(config, store).enqueue(jobs.record, side, "via-initd")
    wait_for(lambda: jobs.runs(side) == ["via-initd"], what="job run by the init.d daemon")
    assert len(children_of(read_pid(pidfile))) == 2
    assert initd("reload").returncode == 0
    assert initd("stop").returncode == 0
    assert initd("status").returncode == 3
