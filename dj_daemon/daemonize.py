"""init.d mode: run the supervisor as a classic daemon with python-daemon and a pidfile.

``start`` returns 0 only once the daemon has written its pidfile and is
alive; ``stop`` sends SIGTERM and waits for the graceful stop; ``status``
answers as LSB says: 0 running, 1 dead with a pidfile left, 3 not running.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable

from .errors import DJError
from .processes import alive

LSB_RUNNING, LSB_DEAD, LSB_STOPPED = 0, 1, 3
#: What the daemon's command line holds, with or without its title (``titles``)
COMMAND = b"delayed_job"


def read_pid(pidfile: str) -> int | None:
    """The pid in ``pidfile``, or None when it is missing or garbage."""
    try:
        return int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running(pid: int) -> bool:
    """Whether ``pid`` is a live delayed_job process. A pidfile left by a daemon that died names
    a pid that another process may bear by now (pids wrap), which must neither block a start
    nor be sent the stop: so its command line is checked too, as ``start-stop-daemon --name``
    does. Where it cannot be read, the pid's liveness is all there is."""
    if not alive(pid):
        return False
    try:
        return COMMAND in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True


def status(pidfile: str) -> tuple[int, str]:
    """(LSB code, one line) for the daemon behind ``pidfile``."""
    pid = read_pid(pidfile)
    if pid is None:
        return LSB_STOPPED, "delayed_job is not running"
    if running(pid):
        return LSB_RUNNING, f"delayed_job is running (pid {pid})"
    return LSB_DEAD, f"delayed_job is not running, but pidfile {pidfile} remains (pid {pid})"


def start(pidfile: str, log_file: str, run: Callable[[], int], wait: float = 15.0) -> int:
    """Daemonize ``run``; in the calling process, return the daemon's pid once it is up."""
    code, line = status(pidfile)
    if code == LSB_RUNNING:
        raise DJError(line.replace("is running", "is already running"))
    _prepare_paths(pidfile, log_file)
    if code == LSB_DEAD:
        os.unlink(pidfile)
    child = os.fork()
    if child == 0:
        _become_daemon(pidfile, log_file, run)
    os.waitpid(child, 0)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pid = read_pid(pidfile)
        if pid is not None and running(pid):
            return pid
        time.sleep(0.05)
    raise DJError(f"daemon did not start within {wait:g}s; see {log_file or 'its log'}")


def _prepare_paths(pidfile: str, log_file: str) -> None:
    """Fail here, with one line, rather than silently inside the detached daemon."""
    for path in filter(None, (pidfile, log_file)):
        folder = Path(path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DJError(f"cannot create {folder}: {exc.strerror}") from None
        if not os.access(folder, os.W_OK):
            raise DJError(f"folder {folder} is not writable")


def _become_daemon(pidfile: str, log_file: str, run: Callable[[], int]) -> None:
    """In the forked child: detach (python-daemon forks again), hold the pidfile, run."""
    # python-daemon and lockfile are imported here, in the one process that detaches: every
    # ``delayed_job`` command imports this module, and ``run`` (systemd's) would pay for them at start
    import daemon
    from daemon.pidfile import TimeoutPIDLockFile

    code = 1
    try:
        errors = open(log_file, "a", encoding="utf-8") if log_file else None
        context = daemon.DaemonContext(
            pidfile=TimeoutPIDLockFile(pidfile, acquire_timeout=0),
            working_directory=os.getcwd(), umask=0o027, stdout=errors, stderr=errors,
            detach_process=True)
        with context:
            code = run()
    finally:
        os._exit(code)


def stop(pidfile: str, timeout: float) -> str:
    """SIGTERM the daemon and wait for it to finish its jobs and exit."""
    code, line = status(pidfile)
    if code != LSB_RUNNING:
        return line
    pid = read_pid(pidfile)
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise DJError(f"delayed_job (pid {pid}) still running after {timeout:g}s")
        time.sleep(0.1)
    return f"delayed_job stopped (pid {pid})"


def reload(pidfile: str) -> str:
    """SIGHUP: reread config, replace workers one at a time."""
    code, line = status(pidfile)
    if code != LSB_RUNNING:
        raise DJError(line)
    pid = read_pid(pidfile)
    os.kill(pid, signal.SIGHUP)
    return f"delayed_job (pid {pid}) reloading"
