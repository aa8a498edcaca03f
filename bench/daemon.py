"""Running the real daemon (``delayed_job run -n K``) or the raw ceiling loop as subprocesses.

Everything needed to time a drain: start, poll the queue depth on a
separate connection every 20 ms, sample the workers' memory, stop with
SIGTERM and insist on exit status 0, and check every job's side effect.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dj_daemon.processes import children_of

from .backends import Backend

ROOT = Path(__file__).resolve().parent.parent
POLL = 0.02


class BenchError(RuntimeError):
    """A run that could not be measured (daemon died, no progress, wrong side effects)."""


def delayed_job_bin() -> str:
    here = Path(sys.executable).parent / "delayed_job"
    return str(here) if here.exists() else (shutil.which("delayed_job") or "delayed_job")


#: the daemon's sentinels and its workers' journals: on the same disk as /var/lib, removed at exit
SENTINELS = tempfile.mkdtemp(prefix="dj-bench-sentinels-")
atexit.register(shutil.rmtree, SENTINELS, True)
#: the daemons' compiled modules, kept from one start to the next as an installed package keeps
#: them (``PYTHONDONTWRITEBYTECODE`` in the bench's own environment made every start compile the
#: project's modules again: 0.15 s of CPU here); outside the tree, removed at exit
BYTECODE = tempfile.mkdtemp(prefix="dj-bench-pycache-")
atexit.register(shutil.rmtree, BYTECODE, True)


def daemon_env(url: str, **extra: str) -> dict[str, str]:
    """A hermetic environment: no inherited DJ_* or systemd variables, the bench package importable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DJ_") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM",
                                                    "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPYCACHEPREFIX"] = BYTECODE
    env.update({"DJ_DATABASE_URL": url, "DJ_ALLOWED_MODULES": "bench", "DJ_LOG_LEVEL": "WARNING",
                "DJ_HOSTNAME": f"bench-{os.getpid()}", "DJ_SENTINEL_DIR": SENTINELS,
                "PYTHONPATH": os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))})
    env.update(extra)
    return env


#: Packages a daemon runs from, compiled whole as an installed package has them: dj_daemon and
#: bench (some modules are imported only once a worker runs), SQLAlchemy, and the drivers (imported
#: by SQLAlchemy at the first connect, so ``import dj_daemon.cli`` leaves them out). A start wrote
#: 17-19 .pyc files of PyMySQL here before.
PACKAGES = ("dj_daemon", "bench", "sqlalchemy", "pymysql", "psycopg")
#: What a start imports, so compiled, from outside ``PACKAGES`` too: the daemon's command and its
#: libraries and standard modules, and those imported only on the way to the first job: sqlite3,
#: and the IDNA codec (with stringprep) with which a socket connect encodes a host name.
IMPORTS = ("dj_daemon.cli", "bench.jobs", "sqlite3", "encodings.idna")


def fill_bytecode(url: str) -> None:
    """Compile, into ``BYTECODE``, what a daemon runs (``IMPORTS``, ``PACKAGES``), so that no measured
    start does it."""
    folders = [folder for name in PACKAGES if (spec := importlib.util.find_spec(name)) is not None
               for folder in spec.submodule_search_locations or ()]
    for argv in (["-c", f"import {', '.join(IMPORTS)}"], ["-m", "compileall", "-q", "-j", "0", *folders]):
        subprocess.run([sys.executable, *argv], env=daemon_env(url), cwd=str(ROOT), check=True,
                       stdout=subprocess.DEVNULL)


def vm_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def tokens(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


@dataclass
class Process:
    """A subprocess in its own session, its output kept in a log file for error reports."""

    argv: list[str]
    env: dict[str, str]
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="bench-", suffix=".log")[1]))

    def __post_init__(self) -> None:
        self._log = open(self.log_path, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=str(ROOT))

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; SIGKILL the group if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            raise BenchError(f"{self.argv[1:3]} did not exit within {timeout}s of SIGTERM:\n{self.tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


def start_daemon(url: str, workers: int, **extra_env: str) -> Process:
    return Process([delayed_job_bin(), "run", "-n", str(workers)], daemon_env(url, **extra_env))


def start_ceiling(backend: Backend, processes: int) -> list[Process]:
    env = daemon_env(backend.url)
    return [Process([sys.executable, "-m", "bench.ceiling", backend.name, backend.url], env)
            for _ in range(processes)]


def timed_drain(backend: Backend, start: Callable[[], list[Process]], n: int, cap: float,
                side_effects: Path, rss_of_workers: bool = False,
                count_statements: bool = False) -> dict[str, Any]:
    """Start the drainers, poll until the queue is empty (or ``cap`` seconds pass), stop, verify.

    Throughput is jobs done over the time from the first Popen to the poll that
    saw the queue empty (or the cap). A capped run is verified too: every job
    that left the queue ran exactly once, and the rest are still queued.
    """
    from .backends import server_status

    poller = backend.raw()
    counters = backend.raw() if count_statements and backend.name == "mariadb" else None
    before = server_status(counters) if counters else None
    procs = start()
    t0 = min(p.started for p in procs)
    polls, first, remaining, capped = 0, None, n, False
    rss: list[float] = []
    try:
        while True:
            remaining = backend.count(poller)
            polls += 1
            now = time.perf_counter() - t0
            if first is None and remaining < n:
                first = now
            if remaining == 0:
                break
            if now > cap:
                capped = True
                break
            if procs[0].argv[1] == "run" and procs[0].proc.poll() is not None:
                raise BenchError(f"daemon exited with {procs[0].proc.returncode} while "
                                 f"{remaining} jobs were queued:\n{procs[0].tail()}")
            if all(p.proc.poll() is not None for p in procs):
                remaining = backend.count(poller)
                if remaining:
                    raise BenchError(f"drainers exited while {remaining} jobs were queued:\n{procs[0].tail()}")
                break
            time.sleep(POLL)
        elapsed = time.perf_counter() - t0
        after = server_status(counters) if counters else None
        if rss_of_workers:
            for p in procs:
                for child in children_of(p.proc.pid):
                    value = vm_rss_mib(child)
                    if value is not None:
                        rss.append(value)
        if procs[0].argv[1] != "run" and not capped:  # the raw loops exit by themselves once empty
            for p in procs:
                try:
                    p.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
        codes = [p.stop() for p in procs]
    finally:
        for p in procs:
            p.close()
    left = backend.count(poller)
    poller.close()
    seen = tokens(side_effects)
    done = n - left
    problems = []
    if any(codes):
        problems.append(f"exit status {codes}")
    if len(set(seen)) != len(seen):
        problems.append(f"{len(seen) - len(set(seen))} jobs ran twice")
    if len(set(seen)) != done:
        problems.append(f"{len(set(seen))} side effects for {done} jobs gone from the queue")
    if not capped and left:
        problems.append(f"{left} jobs left")
    result: dict[str, Any] = {
        "jobs": n, "done_at_stop": n - remaining, "elapsed_s": round(elapsed, 4),
        "jobs_per_s": round((n - remaining) / elapsed, 1), "capped": capped,
        "first_job_s": None if first is None else round(first, 3),
        "verified": not problems, "problems": problems, "exit_codes": codes,
    }
    if first is not None and elapsed > first:
        result["jobs_per_s_after_first"] = round((n - remaining) / (elapsed - first), 1)
    if rss:
        result["worker_rss_mib"] = [round(v, 1) for v in rss]
    if before and after:
        done_counted = max(n - remaining, 1)
        delta = {k: after[k] - before[k] for k in before}
        # the poller's COUNT(*)s and the two SHOW STATUS are not the daemon's
        delta["Questions"] -= polls + 1
        delta["Com_select"] -= polls
        result["server_counters_per_job"] = {k: round(v / done_counted, 2) for k, v in delta.items()}
    if problems:
        raise BenchError("; ".join(problems) + f" ({result})")
    return result
