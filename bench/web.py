"""The web page with a million rows: the overview, the tracked list and one identifier's page,
each timed through the WSGI interface (Flask's test client, no network), target under 200 ms.

The tables are filled as a busy year leaves them: ``rows`` tracked jobs (19
in 20 completed, the rest waiting with a queue row, ten jobs per identifier
over three classes), as many rows in the work queue, and a day of per-minute
rows for two hosts. The overview's background count of the work queue (a
full scan, see ``long_jobs.web.counts``) is taken once before the timing and
reported on its own. ``BENCH_WEB_ROWS`` sets the size (1,000,000 by default,
20,000 with ``--quick``).
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

from dj_daemon.config import Config
from dj_daemon.job import utcnow
from dj_daemon.store import minutes

from .backends import Backend

PAGES = {"overview": "/", "tracked list": "/tracked", "one identifier": "/identifier/{identifier}",
         "tracked list, state error": "/tracked?state=error", "work queue": "/queue"}
TARGET_MS = 200.0
CLASSES = ("app.jobs:replicate", "app.jobs:submit", "app.jobs:check")
CHUNK = 20_000  # rows built in memory at once


def size(plan: Any) -> int:
    return int(os.environ.get("BENCH_WEB_ROWS") or (20_000 if plan.quick else 1_000_000))


def _queue_rows(start: int, stop: int, now: Any) -> list[dict[str, Any]]:
    handler = json.dumps({"target": CLASSES[0], "args": ["/data/x", 1], "kwargs": {}})
    return [{"id": i + 1, "priority": 0, "attempts": 0, "handler": handler, "run_at": now, "queue": "replication",
             "created_at": now, "updated_at": now, "strand": f"{CLASSES[i % 3]}#{i // 10}"} for i in range(start, stop)]


def _tracked_rows(start: int, stop: int, now: Any) -> list[dict[str, Any]]:
    payload = json.dumps({"target": CLASSES[0], "args": ["/data/x", 1], "kwargs": {"token": "t"}})
    return [{"id": i + 1, "job_class": CLASSES[i % 3], "identifier": str(i // 10), "gate": "defer",
             "state": "enqueued" if i % 20 == 0 else "completed", "hostname": "bench",
             "delayed_job_id": i + 1 if i % 20 == 0 else None, "queue": "replication", "priority": 0,
             "payload": payload, "created_at": now, "updated_at": now, "finished_at": None if i % 20 == 0 else now}
            for i in range(start, stop)]


def _chunks(rows: int) -> Iterator[tuple[int, int]]:
    for start in range(0, rows, CHUNK):
        yield start, min(rows, start + CHUNK)


def fill(backend: Backend, rows: int) -> float:
    """The tables as described above; returns the seconds it took."""
    started, now = time.perf_counter(), utcnow()
    backend.reset()
    for start, stop in _chunks(rows):
        backend.load(_queue_rows(start, stop, now))
        backend.load(_tracked_rows(start, stop, now), table="delayed_job_states")
    first = minutes.number(now - timedelta(days=1))
    backend.load([{"hostname": host, "minute": first + m, "done": m % 50, "failed": m % 3,
                   "depth": 1000 + m} for host in ("bench", "bench2") for m in range(24 * 60)],
                 table="delayed_job_minutes")
    return round(time.perf_counter() - started, 1)


def time_page(client: Any, path: str, runs: int) -> dict[str, Any]:
    """Two warm-up requests, then ``runs`` timed ones: median and worst, in ms."""
    for _ in range(2):
        assert client.get(path).status_code == 200, path
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    median = statistics.median(timings)
    return {"path": path, "median_ms": round(median, 1), "max_ms": round(max(timings), 1),
            "under_200ms": median < TARGET_MS}


def section_web(backend: Backend, plan: Any, folder: Path) -> dict[str, Any]:
    from long_jobs.web import create_app

    rows = size(plan)
    out: dict[str, Any] = {"rows": rows, "fill_s": fill(backend, rows)}
    with tempfile.TemporaryDirectory(prefix="dj-bench-web-") as sentinel_dir:
        app = create_app(Config(url=backend.url, hostname="bench", sentinel_dir=sentinel_dir))
        out.update(_measure(app, rows, plan))
    backend.reset()
    return out


def _measure(app: Any, rows: int, plan: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    counts = app.extensions["long_jobs"].counts
    out["queue_count_scan_s"] = counts.refresh().took  # the background reading, once a minute at most
    counts.current()  # not due again: no scan runs while the pages are timed
    client = app.test_client()
    identifier = str(rows // 20)
    out["pages"] = {name: time_page(client, path.format(identifier=identifier), max(plan.runs, 5))
                    for name, path in PAGES.items()}
    app.extensions["long_jobs"].store.dispose()
    return out
