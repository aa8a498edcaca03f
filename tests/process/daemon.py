"""A real ``delayed_job run`` subprocess, with a real sd_notify datagram socket bound by the test.

systemd itself is the one thing not here: the test plays its part by binding
the ``NOTIFY_SOCKET`` and reading what the daemon sends.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from dj_daemon.daemonize import read_pid
from dj_daemon.processes import children_of
from tests.conftest import bin_path


def kill_daemon_of(pidfile: str) -> None:
    """Kill, at the end of a test, the daemon behind ``pidfile`` and its workers, if still running."""
    pid = read_pid(pidfile)
    for leftover in ([pid, *children_of(pid)] if pid else []):
        try:
            os.kill(leftover, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.02)


class Daemon:
    """Starts the daemon in its own session and records its sd_notify messages."""

    def __init__(self, env: dict[str, str], *args: str, watchdog_usec: int | None = None,
                 journal: bool = False, program: list[str] | None = None) -> None:
        self.folder = tempfile.mkdtemp(prefix="djn")  # short: AF_UNIX paths are limited to 108 bytes
        self.socket_path = os.path.join(self.folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.socket_path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        env = {**env, "NOTIFY_SOCKET": self.socket_path}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.log_path = Path(self.folder) / "daemon.log"
        self._log = open(self.log_path, "w")
        if journal:  # as systemd does for a stdout/stderr connected to journald: the stream's device:inode
            stat = os.fstat(self._log.fileno())
            env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
        self.proc = subprocess.Popen([*(program or [bin_path("delayed_job")]), "run", *args], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            for line in data.decode().splitlines():
                self.messages.append((time.monotonic(), line))

    def sent(self, prefix: str) -> list[str]:
        return [m for _, m in self.messages if m.startswith(prefix)]

    def wait_ready(self, timeout: float = 20.0) -> None:
        wait_for(lambda: self.sent("READY=1") or self.proc.poll() is not None, timeout, "READY=1")
        assert self.proc.poll() is None, self.log()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def worker_pids(self) -> list[int]:
        """The supervisor's live children, from /proc/*/stat (zombies excluded)."""
        return children_of(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self._stop.set()
        self.sock.close()
        self._reader.join(timeout=2)
        self._log.close()
