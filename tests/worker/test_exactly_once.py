"""Several real worker processes on one queue: each job performed exactly once.

Counted from the jobs' own side effects (one appended line per run), never
from the queue's bookkeeping.
"""
from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from dj_daemon.api import Queue
from tests import jobs
from tests.conftest import bin_path, make_db_url


@pytest.mark.parametrize("dialect, processes, count", [("sqlite", 2, 2000), ("mysql", 4, 5000)])
def test_each_job_runs_exactly_once(request, tmp_path: Path, dialect, processes, count) -> None:
    from dj_daemon.config import Config
    from dj_daemon.store import open_store

    gen = make_db_url(request, dialect, tmp_path)
    url = next(gen)
    try:
        config = Config(url=url, allowed_modules=("tests",))
        store = open_store(config)
        store.create_schema()
        side = str(tmp_path / "runs.txt")
        queue = Queue(config, store)
        meet = str(tmp_path / "rendezvous.txt")  # taken first (priority), one per process
        queue.enqueue_many(queue.prepare(jobs.rendezvous, meet, processes, priority=-1) for _ in range(processes))
        for start in range(0, count, 500):
            queue.enqueue_many(queue.prepare(jobs.record, side, n) for n in range(start, min(start + 500, count)))
        env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "DJ_DATABASE_URL": url,
               "DJ_ALLOWED_MODULES": "tests", "DJ_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"}
        procs = [subprocess.Popen([bin_path("delayed_job"), "workoff"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(processes)]
        outputs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        seen = Counter(jobs.runs(side))
        assert len(seen) == count and set(seen.values()) == {1}
        assert store.counts() == {"waiting": 0, "running": 0, "failed": 0}
        done = [int(out.split()[0]) for out, _ in outputs]
        assert sum(done) == count + processes and all(done)  # every process took part
        assert len(set(jobs.runs(meet))) == processes
        store.dispose()
    finally:
        gen.close()
