"""What unique keys and concurrency limits cost jobs that use neither (issue 19: at most 10% of
drain throughput): drain -n 2 of plain jobs by the daemon as shipped, against the same daemon
with those features' hot-path code taken out, run by run interleaved, medians compared. And
what a backlog of one key's jobs waiting behind its limit costs a reservation (``backlog``).

The daemon "without" is ``python -m bench.features run -n 2``: run as a program, this module
puts back the ready predicate's strand test as it was before concurrency limits (the first live
job of its strand, ``first_only``) and skips the release of unique keys, then runs the daemon's
own command line. Its workers are forked, so they inherit both; everything else is the same
code, so the ratio of the two medians is what the features cost.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import exists, or_
from sqlalchemy.sql.elements import ColumnElement

from .backends import Backend
from .daemon import Process, daemon_env, start_daemon
from .sections import Plan, _drain_once, median

WORKERS = 2


def first_only() -> ColumnElement[bool]:
    """The strand test before concurrency limits: no earlier live job of the same strand."""
    from dj_daemon.schema import delayed_jobs as dj
    earlier = dj.alias("earlier")
    return or_(dj.c.strand.is_(None), ~exists().where(
        earlier.c.strand == dj.c.strand, earlier.c.id < dj.c.id, earlier.c.failed_at.is_(None)))


def start_without(url: str, workers: int) -> Process:
    return Process([sys.executable, "-m", "bench.features", "run", "-n", str(workers)], daemon_env(url))


def section_features(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    """``plan.runs`` pairs of drains, with and without the features, each pair in the other order
    than the last (the first of a pair meets the server's purge of the run before). The ratio is
    of the medians over the whole drain, start-up included, and over the time after the first job."""
    daemons = {"with": start_daemon, "without": start_without}
    runs: dict[str, list[dict[str, Any]]] = {"with": [], "without": []}
    for r in range(plan.runs):
        for name in ("with", "without") if r % 2 == 0 else ("without", "with"):
            start = daemons[name]
            runs[name].append(_drain_once(backend, plan, folder, f"features-{name}-{r}", plan.drain_jobs,
                                          plan.drain_cap, lambda: [start(backend.url, WORKERS)]))
    out: dict[str, Any] = {"workers": WORKERS, "runs": runs}
    for key, figure in (("", "jobs_per_s"), ("_after_first_job", "jobs_per_s_after_first")):
        rates = {name: median([run[figure] for run in done if run.get(figure)]) for name, done in runs.items()}
        ratio = rates["with"] / rates["without"] if rates["with"] and rates["without"] else None
        out[f"jobs_per_s{key}"] = rates
        out[f"with_over_without{key}"] = None if ratio is None else round(ratio, 3)
    out["backlog_reserve_ms"] = backlog(backend)
    return out


#: Jobs of one key waiting behind its limit, in the backlog measurement.
BACKLOGS = (0, 1_000, 10_000)
LIMIT = 2


def backlog(backend: Backend, plain: int = 2_000, tries: int = 10) -> dict[str, float]:
    """Milliseconds per reservation of 10 plain jobs (median of ``tries``) with a backlog of one
    key's jobs due before them, its first ``LIMIT`` running: the due scan passes each waiting
    job, one probe of the strand index and one lookup among the ranked heads."""
    from dj_daemon.concurrency import Concurrency, strand_of
    from dj_daemon.config import Config
    from dj_daemon.job import NewJob
    from dj_daemon.store import Filters, open_store

    handler = '{"target": "bench.jobs:noop", "args": []}'
    out = {}
    for waiting in BACKLOGS:
        backend.reset()
        store = open_store(Config(url=backend.url, allowed_modules=("bench",)))
        try:
            store.insert([NewJob(handler, "noop", concurrency=Concurrency(strand_of("k"), LIMIT))] * waiting)
            for n in range(LIMIT if waiting else 0):
                store.reserve(f"bench:{n}", Filters())
            store.insert([NewJob(handler, "noop")] * plain)
            times = []
            for n in range(tries):
                started = time.perf_counter()
                store.reserve(f"bench:w{n}", Filters(), limit=10)
                times.append((time.perf_counter() - started) * 1000)
        finally:
            store.dispose()
        out[str(waiting)] = round(median(times), 2)
    return out


def main() -> None:
    from dj_daemon import cli
    from dj_daemon.store import common, unique
    common.within_limit = first_only
    unique.keyed = lambda jobs: []
    cli.main(sys.argv[1:])


if __name__ == "__main__":
    main()
