"""Stored-row scaling (issue 17): what the idle poll, a reservation, the pickup of one due job and
the queue readings cost with many jobs scheduled for later, or failed for good, in the table.

For each backend and each case (0, then each size of rows for tomorrow, then the largest size
of rows failed for good, then that size of both together: the issue's acceptance case): the
rows are loaded (multi-row INSERTs, fresh statistics), then, in this process, the median of
``REPEAT`` timings of ``Store.has_ready`` (the supervisor's idle poll), ``Store.reserve`` of a
batch with nothing due, ``Store.counts``, ``Store.queue_depths`` (STATUS= and the metrics) and
``long_jobs status``'s snapshot (``ops.status``); then a real ``delayed_job run -n 2`` picks up
``PICKUPS`` due jobs enqueued one by one (latency from enqueue to start, as the pickup section
measures it). ``largest`` repeats the last case, with its pickups timed again in turn with those
of an empty table of a second database (``Backend.sibling``), under a daemon each.
Wall times, on a shared host: the deterministic row counts are in tests/store/test_stored_rows.py
and tests/store/test_counts.py.
"""
from __future__ import annotations

import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from dj_daemon.job import utcnow
from dj_daemon.store import Filters, open_store

from long_jobs import ops

from . import jobs
from .backends import Backend
from .daemon import BenchError, start_daemon
from .sections import Plan, config_for, queue_for

REPEAT = 15
#: Jobs timed per case: the median of 5 moved by a millisecond with one pickup of 508 ms (a wake-up
#: the supervisor missed, waiting for the next poll: fixed since, see docs/performance.md), against
#: 3 ms medians
PICKUPS = 25
BATCH = 20


def section_stored_rows(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    """One result per case, keyed ``future_<n>``, ``failed_<n>`` and ``both_<n>``, and ``largest``:
    the last case, with its pickups against an empty table's, timed in turn (``pickup_vs_empty``)."""
    largest = max(plan.stored_rows)
    cases = [("future", n) for n in plan.stored_rows] + [("failed", largest), ("both", largest)]
    results: dict[str, Any] = {}
    for kind, n in cases:
        backend.reset()
        for part in ("future", "failed") if kind == "both" else (kind,):
            _load(backend, part, n)
        backend.settle()
        results[f"{kind}_{n}"] = {**_in_process(backend),
                                  **_pickups([backend], [folder / f"{backend.name}-{kind}-{n}.txt"])[0]}
    results["largest"] = {**results[f"both_{largest}"], "rows": 2 * largest, **_against_empty(backend, folder)}
    return results


def _against_empty(backend: Backend, folder: Path) -> dict[str, Any]:
    """The largest case's pickups (``backend`` as it is) and an empty table's, one of each in turn
    under a daemon each, so that the host's moments weigh on both alike: measured minutes apart,
    two medians of the same empty table differed by a millisecond (1.7 and 3.3 ms on MariaDB)."""
    empty = backend.sibling()
    try:
        empty.reset()
        empty.settle()
        paths = [folder / f"{backend.name}-largest.txt", folder / f"{backend.name}-empty.txt"]
        full, bare = _pickups([backend, empty], paths)
    finally:
        empty.close()
    return {"pickup_interleaved_ms": full["pickup_median_ms"], "pickup_empty_interleaved_ms": bare["pickup_median_ms"],
            "pickup_vs_empty": round(full["pickup_median_ms"] / bare["pickup_median_ms"], 2)}


def _load(backend: Backend, kind: str, n: int) -> None:
    """``n`` rows for tomorrow, or failed yesterday, at priorities 0..2, in chunks."""
    now = utcnow()
    run_at = now + timedelta(days=1) if kind == "future" else now - timedelta(days=1)
    failed_at = now if kind == "failed" else None
    for start in range(0, n, 50_000):
        backend.load([{"priority": i % 3, "attempts": 0, "handler": '{"target":"bench.jobs:noop"}',
                       "run_at": run_at + timedelta(microseconds=i), "failed_at": failed_at,
                       "created_at": now, "updated_at": now} for i in range(start, min(n, start + 50_000))])


def _median_ms(operation: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        operation()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _in_process(backend: Backend) -> dict[str, Any]:
    config = config_for(backend)
    store = open_store(config)
    try:
        store.has_ready(Filters())  # connect, and list the priorities where the dialect does
        counts = store.counts()
        return {"counts": {**counts, "at_least": sorted(counts.at_least)},  # what they read: capped or not
                "poll_ms": _median_ms(lambda: store.has_ready(Filters())),
                "reserve_ms": _median_ms(lambda: store.reserve("bench:1", Filters(), limit=BATCH)),
                "counts_ms": _median_ms(store.counts),
                "queue_depths_ms": _median_ms(store.queue_depths),
                "status_ms": _median_ms(lambda: ops.status(store, config))}
    finally:
        store.dispose()


def _pickups(backends: list[Backend], paths: list[Path]) -> list[dict[str, float]]:
    """Median latency of ``PICKUPS`` jobs enqueued one by one under an idle ``run -n 2`` on each
    backend (its jobs' lines in ``paths``), the backends in turn for each job, in one order and
    then in the other."""
    daemons = [start_daemon(backend.url, 2) for backend in backends]
    try:
        time.sleep(3.0)  # started, registered, idle
        queues = [queue_for(backend) for backend in backends]
        turns = list(zip(queues, daemons, paths))
        for i in range(PICKUPS):
            for queue, daemon, path in turns if i % 2 == 0 else reversed(turns):  # each as often first
                queue.enqueue(jobs.stamp, str(path), f"s{i}", time.time())
                deadline = time.monotonic() + 60
                while len(_lines(path)) <= i:
                    if time.monotonic() > deadline or daemon.proc.poll() is not None:
                        raise BenchError(f"pickup {i} did not run:\n{daemon.tail()}")
                    time.sleep(0.005)
        for queue, daemon in zip(queues, daemons):
            queue.store.dispose()
            daemon.stop()
    finally:
        for daemon in daemons:
            daemon.close()
    return [_latencies(path) for path in paths]


def _latencies(path: Path) -> dict[str, float]:
    latencies = [(float(started) - float(enqueued)) * 1000 for _, enqueued, started in map(str.split, _lines(path))]
    # to the hundredth: SQLite's medians are 0.6-0.8 ms, which tenths would move in steps of 15%
    # of the ratio to the empty table's
    return {"pickup_median_ms": round(statistics.median(latencies), 2), "pickup_max_ms": round(max(latencies), 1)}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
