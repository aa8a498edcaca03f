"""delayed_job's command line (``script/delayed_job [options] start|stop|restart|run``), typed at ours.

Each test runs the installed ``delayed_job`` console script as a real
subprocess, as delayed_job's README and ``lib/delayed/command.rb`` use it, on
a real database (SQLite and MariaDB) where jobs are involved. Process titles
are read from ``/proc/<pid>/cmdline`` of the real supervisor and workers.
"""
from __future__ import annotations

import os
from datetime import timedelta
import signal
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import pytest

from dj_daemon.api import Queue
from dj_daemon.cli_options import REFUSED
from dj_daemon.daemonize import read_pid
from dj_daemon.processes import children_of
from tests import jobs
from tests.process.daemon import kill_daemon_of, wait_for
from tests.cli.test_delayed_job_cli import bare_env  # noqa: F401 (a fixture)
from tests.process.test_initd_mode import dj


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the tests' daemons keep their pidfiles; any daemon still running is killed afterwards."""
    folder = tmp_path / "run"
    yield folder
    for pidfile in folder.glob("*.pid"):
        kill_daemon_of(str(pidfile))


def title(pid: int) -> str:
    """What ``ps`` shows as the command of ``pid``."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def titles_of(pidfile: Path) -> tuple[str, list[str]]:
    """The supervisor's title and its workers' titles, sorted."""
    pid = read_pid(str(pidfile))
    assert pid is not None
    return title(pid), sorted(title(child) for child in children_of(pid))


def one_line_error(result, *fragments: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("delayed_job: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_version_prints_the_package_version(bare_env) -> None:
    """``delayed_job --version``: the installed package's version, then exit 0."""
    result = dj(bare_env, "--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"delayed_job {version('dj-daemon')}")


def test_options_before_the_verb_start_and_stop(store, subprocess_env, run_dir: Path, tmp_path: Path) -> None:
    """README: ``script/delayed_job -n 2 start``, then ``script/delayed_job -n 2 stop``; the options
    may stand before the verb, and stop takes the same options as start."""
    pidfile = run_dir / "dj.pid"
    started = dj(subprocess_env, "-n", "2", "--pidfile", str(pidfile), "start", "--log-file", str(tmp_path / "l"))
    assert started.returncode == 0, started.stderr
    pid = read_pid(str(pidfile))
    wait_for(lambda: len(children_of(pid)) == 2, what="2 workers")
    stopped = dj(subprocess_env, "-n", "2", "--pidfile", str(pidfile), "stop")
    assert (stopped.returncode, stopped.stdout.strip()) == (0, f"delayed_job stopped (pid {pid})"), stopped.stderr


def test_option_after_the_verb_wins(store, subprocess_env, run_dir: Path, tmp_path: Path) -> None:
    """README: ``script/delayed_job -n2 restart``; an option given both before and after the verb
    takes the value after it (``-n 3 restart -n 1`` runs one worker)."""
    pidfile, log = str(run_dir / "dj.pid"), str(tmp_path / "dj.log")
    assert dj(subprocess_env, "-n2", "start", "--pidfile", pidfile, "--log-file", log).returncode == 0
    wait_for(lambda: len(children_of(read_pid(pidfile))) == 2, what="2 workers")
    restarted = dj(subprocess_env, "-n", "3", "--pidfile", pidfile, "restart", "-n", "1", "--log-file", log)
    assert restarted.returncode == 0, restarted.stderr
    wait_for(lambda: len(children_of(read_pid(pidfile))) == 1, what="1 worker")
    assert dj(subprocess_env, "--pidfile", pidfile, "stop").returncode == 0


def test_pools_as_delayed_job_writes_them(store, subprocess_env, run_dir: Path, tmp_path: Path) -> None:
    """README: ``--pool=tracking --pool=mailers,tasks:2 --pool=*:2 start`` runs 1 worker for tracking,
    2 for mailers and tasks, 2 for any queue; each worker's title names its queues."""
    pidfile = run_dir / "dj.pid"
    started = dj(subprocess_env, "--pool=tracking", "--pool=mailers,tasks:2", "--pool=*:2", "start",
                 f"--pidfile={pidfile}", f"--log-file={tmp_path / 'dj.log'}")
    assert started.returncode == 0, started.stderr
    wait_for(lambda: len(titles_of(pidfile)[1]) == 5 and all(t.endswith("idle") for t in titles_of(pidfile)[1]),
             what="5 idle workers")
    supervisor, workers = titles_of(pidfile)
    assert supervisor == "delayed_job: supervisor"
    assert sorted(t.split(" ", 3)[3] for t in workers) == ["[*] idle"] * 2 + ["[mailers,tasks] idle"] * 2 \
        + ["[tracking] idle"]
    assert sorted(int(t.split()[2]) for t in workers) == [0, 1, 2, 3, 4]
    assert dj(subprocess_env, "--pidfile", str(pidfile), "stop").returncode == 0


def test_queue_before_start_limits_the_daemon(config, store, subprocess_env, run_dir: Path, tmp_path) -> None:
    """README: ``script/delayed_job --queue=tracking start`` works only the tracking queue."""
    side, pidfile = str(tmp_path / "runs.txt"), str(run_dir / "dj.pid")
    queue = Queue(config, store)
    other = queue.enqueue(jobs.record, side, "other", queue="mailers")
    queue.enqueue(jobs.record, side, "tracking", queue="tracking")
    started = dj(subprocess_env, "--queue=tracking", "start", "--pidfile", pidfile, "--log-file", str(tmp_path / "l"))
    assert started.returncode == 0, started.stderr
    wait_for(lambda: jobs.runs(side) == ["tracking"], what="the tracking job run")
    assert dj(subprocess_env, "--pidfile", pidfile, "stop").returncode == 0
    assert [job.id for job in store.jobs()] == [other] and jobs.runs(side) == ["tracking"]


def test_queue_and_queues_repeat_and_take_lists(config, store, subprocess_env, tmp_path: Path) -> None:
    """``--queue`` is ``--queues`` (delayed_job has both); each takes a comma list and may repeat."""
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    for name in ("mail", "a", "b", "other"):
        queue.enqueue(jobs.record, side, name, queue=name)
    result = dj(subprocess_env, "workoff", "--queues", "a,b", "--queue", "mail")
    assert result.returncode == 0, result.stderr
    assert sorted(jobs.runs(side)) == ["a", "b", "mail"]
    assert [job.queue for job in store.jobs()] == ["other"]


def test_exit_on_complete_works_off_and_exits(config, store, subprocess_env, tmp_path: Path) -> None:
    """``--exit-on-complete``: "Exit when no more jobs are available to run", before or after the verb."""
    side = str(tmp_path / "runs.txt")
    for n in range(3):
        Queue(config, store).enqueue(jobs.record, side, n)
    result = dj(subprocess_env, "--exit-on-complete", "work")
    assert result.returncode == 0, result.stderr
    assert sorted(jobs.runs(side)) == ["0", "1", "2"] and store.jobs() == []
    assert dj(subprocess_env, "work", "--exit-on-complete").returncode == 0


@pytest.mark.parametrize("args", [["run", "-n", "2", "--exit-on-complete"], ["--exit-on-complete", "-n", "2", "run"]])
def test_the_daemon_exits_on_complete(config, store, subprocess_env, tmp_path: Path, args: list[str]) -> None:
    """README: ``script/delayed_job run --exit-on-complete``: the daemon's workers run the queue empty,
    then the daemon stops (exit 0); a job due later does not keep it running."""
    side = str(tmp_path / "runs.txt")
    queue = Queue(config, store)
    for n in range(6):
        queue.enqueue(jobs.record, side, n)
    later = queue.enqueue(jobs.record, side, "later", run_at=timedelta(hours=1))
    result = dj(subprocess_env, *args)
    assert result.returncode == 0, result.stderr
    assert sorted(jobs.runs(side)) == [str(n) for n in range(6)]
    assert [job.id for job in store.jobs()] == [later]
    assert "no job left to run (--exit-on-complete): stopping" in result.stderr


def test_the_started_daemon_exits_on_complete(config, store, subprocess_env, tmp_path: Path, run_dir: Path) -> None:
    """README: ``script/delayed_job start --exit-on-complete``: in the background, the same; its
    pidfile goes with it."""
    side, pidfile = str(tmp_path / "runs.txt"), run_dir / "dj.pid"
    Queue(config, store).enqueue(jobs.record, side, "a")
    started = dj({**subprocess_env, "DJ_PIDFILE": str(pidfile)}, "--exit-on-complete", "start")
    assert started.returncode == 0, started.stderr
    wait_for(lambda: not pidfile.exists(), 60, "the daemon's exit")
    assert jobs.runs(side) == ["a"] and store.jobs() == []


def test_titles_show_the_prefix_and_the_running_job(config, store, start_daemon, tmp_path: Path) -> None:
    """``-p``/``--prefix NAME`` ("String to be prefixed to worker process names"); our titles:
    ``<prefix> delayed_job: supervisor`` and ``<prefix> delayed_job: worker N [queues] job ID``."""
    side, flag = str(tmp_path / "runs.txt"), str(tmp_path / "finish")
    job_id = Queue(config, store).enqueue(jobs.sleep_until_flag, side, flag, 30, queue="mail")
    daemon = start_daemon("-p", "myapp", "--pool", "mail:1")
    daemon.wait_ready()
    wait_for(lambda: jobs.runs(side) == ["started"], what="job started")
    [worker] = daemon.worker_pids()
    assert title(daemon.proc.pid) == "myapp delayed_job: supervisor"
    wait_for(lambda: title(worker) == f"myapp delayed_job: worker 0 [mail] job {job_id}", timeout=5,
             what=f"worker title with job {job_id}: {title(worker)!r}")
    Path(flag).touch()
    wait_for(lambda: title(worker) == "myapp delayed_job: worker 0 [mail] idle", what="idle title")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0


def test_titles_without_setproctitle_set_only_the_command_name(store, start_daemon, tmp_path: Path) -> None:
    """Without the ``[titles]`` extra the daemon runs as well, says nothing of it, and sets only the
    kernel's 15-byte command name (``ps -o comm``); ``ps``'s command line stays as typed."""
    blocker = tmp_path / "no_setproctitle"
    blocker.mkdir()
    (blocker / "setproctitle.py").write_text("raise ImportError('not installed')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", ""), str(Path.cwd())])}
    daemon = start_daemon("-n", "1", env=env)
    daemon.wait_ready()
    [worker] = daemon.worker_pids()
    comm = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in (daemon.proc.pid, worker)}
    assert comm == {daemon.proc.pid: "delayed_job: su", worker: "delayed_job: wo"}
    assert title(daemon.proc.pid).endswith("delayed_job run -n 1")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert "setproctitle" not in daemon.log() and "Traceback" not in daemon.log()


def test_pid_dir_and_log_dir(store, subprocess_env, run_dir: Path, tmp_path: Path) -> None:
    """``--pid-dir=DIR`` and ``--log-dir=DIR``: the pidfile is DIR/delayed_job.pid, the log DIR/delayed_job.log
    (delayed_job's names for one daemon), and status and stop find the daemon by the same option."""
    logs = tmp_path / "log"
    started = dj(subprocess_env, f"--pid-dir={run_dir}", f"--log-dir={logs}", "start")
    assert started.returncode == 0, started.stderr
    pid = read_pid(str(run_dir / "delayed_job.pid"))
    assert started.stdout.strip() == f"delayed_job started (pid {pid})"
    status = dj(subprocess_env, "status", "--pid-dir", str(run_dir))
    assert (status.returncode, status.stdout.strip()) == (0, f"delayed_job is running (pid {pid})")
    assert dj(subprocess_env, "--pid-dir", str(run_dir), "stop").returncode == 0
    assert f"supervisor {pid} stopped" in (logs / "delayed_job.log").read_text()


@pytest.mark.parametrize("before", [True, False], ids=["before the verb", "after the verb"])
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_options_without_an_equivalent_are_refused(bare_env, run_dir: Path, name: str, before: bool) -> None:
    """delayed_job's ``--monitor``, ``--daemon-options``, ``--read-ahead``, ``-i/--identifier`` and
    ``-e/--environment`` have no equivalent here: one line that names the option and what to use."""
    decls, is_flag, message = REFUSED[name]
    option = [decls[-1]] if is_flag else [decls[-1], "1"]
    args = [*option, "start"] if before else ["start", *option]
    one_line_error(dj(bare_env, *args, "--pidfile", str(run_dir / "dj.pid")), "/".join(decls), message)
    assert not run_dir.exists()


@pytest.mark.parametrize("args, fragment", [
    (["-n", "2", "work"], "-n/--workers does not apply to work"),
    (["--pool", "a:1", "workoff"], "--pool does not apply to workoff"),
    (["--queue", "a", "clear"], "--queues/--queue does not apply to clear"),
    (["-p", "x", "jobs", "list"], "-p/--prefix does not apply to jobs"),
    (["--pidfile", "a", "run"], "--pidfile does not apply to run"),
    (["--pidfile", "a", "--pid-dir", "b", "stop"], "give --pidfile or --pid-dir, not both"),
])
def test_an_option_the_verb_does_not_take_is_refused(bare_env, args: list[str], fragment: str) -> None:
    """delayed_job's options belong to its daemon verbs; given before a verb that has no use for one,
    ours says so in one line rather than ignoring it."""
    one_line_error(dj(bare_env, *args), fragment)
