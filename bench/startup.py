"""First job after start (issue 17): from the exec of ``delayed_job run -n 2`` to the start of a job
already due in the queue.

Each run starts from an empty queue holding one due ``bench.jobs.stamp`` job, then takes the wall
clock and starts the daemon; the job records ``time.time()`` as it starts, and the figure is the
difference. The daemon is stopped (SIGTERM, exit status 0 required) once the job's line is there.
A run on a shared host includes what the others do meanwhile: the median of ``plan.runs``, at
least five, is the figure; each run is in ``runs_ms``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from . import jobs
from .backends import Backend
from .daemon import BenchError, start_daemon
from .sections import Plan, median, queue_for

#: Runs at least: a start-up is short, and one run delayed by a neighbour's burst must not be the figure.
MIN_RUNS = 5
#: Seconds a run may take to reach its job before it is an error.
LIMIT = 30.0
WORKERS = 2


def section_startup(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    """The runs' median, and the host's load averages (1, 5, 15 min) as they ended: a start-up on
    two cores is as fast as what the neighbours leave it."""
    runs = [_first_job(backend, folder / f"{backend.name}-startup-{r}.txt") for r in range(max(plan.runs, MIN_RUNS))]
    return {"first_job_ms": median(runs), "workers": WORKERS, "runs_ms": runs,
            "loadavg": [round(load, 2) for load in os.getloadavg()]}


def _first_job(backend: Backend, side_effects: Path) -> float:
    """Milliseconds from the daemon's exec to its first job's start."""
    backend.reset()
    side_effects.unlink(missing_ok=True)
    queue = queue_for(backend)
    queue.enqueue(jobs.stamp, str(side_effects), "first", 0.0)
    queue.store.dispose()
    started = time.time()
    daemon = start_daemon(backend.url, WORKERS)
    try:
        line = _wait_for_line(side_effects, daemon)
        if daemon.stop():
            raise BenchError(f"daemon exited with {daemon.proc.returncode}:\n{daemon.tail()}")
    finally:
        daemon.close()
    return round((float(line.split()[2]) - started) * 1000, 1)


def _wait_for_line(side_effects: Path, daemon: Any) -> str:
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if side_effects.exists() and side_effects.read_text().endswith("\n"):
            return side_effects.read_text().splitlines()[0]
        if daemon.proc.poll() is not None:
            raise BenchError(f"daemon exited before its first job:\n{daemon.tail()}")
        time.sleep(0.005)
    raise BenchError(f"no job started within {LIMIT:g}s:\n{daemon.tail()}")
