"""Contention between workers on MariaDB (issue 17): how often a reservation falls back to the
one-step locking read because every candidate it read was taken by another worker meanwhile.

``common.reserve_by_id`` reads candidate ids without locking, then locks those still ready by
primary key; the one-step read (``FOR UPDATE SKIP LOCKED`` through the ready index) decides only
when none was left. The drain of ``plan.drain_jobs`` no-op jobs by ``run -n 2`` then ``-n 4``,
interleaved, goes through the counting proxy, which sorts the reservation's statements
(``proxy.kind``). The figures are counts, steadier under a shared host's load than a rate: per
100 candidate reads, how many locking reads by id and one-step reads followed. (The proxy adds
a hop to each round trip, which changes the timing the workers meet each other with.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .backends import Backend
from .daemon import start_daemon, timed_drain
from .proxy import CountingProxy
from .sections import Plan, median, noop_rows

WORKERS = (2, 4)


def section_contention(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    if backend.name != "mariadb":
        return {"note": "the two-step reservation and its fallback are MariaDB's only"}
    runs: dict[int, list[dict[str, Any]]] = {k: [] for k in WORKERS}
    for r in range(plan.runs):
        for k in WORKERS:
            runs[k].append(_counted_drain(backend, plan, folder / f"contention-n{k}-{r}.txt", k))
    return {f"n{k}": {"fallbacks_per_100": median([run["fallbacks_per_100"] for run in rs]), "runs": rs}
            for k, rs in runs.items()}


def _counted_drain(backend: Backend, plan: Plan, side_effects: Path, workers: int) -> dict[str, Any]:
    backend.reset()
    side_effects.unlink(missing_ok=True)
    backend.load(noop_rows(backend, plan.drain_jobs, side_effects))
    proxy = CountingProxy(backend.url)
    try:
        result = timed_drain(backend, lambda: [start_daemon(proxy.url, workers)], plan.drain_jobs, plan.drain_cap,
                             side_effects)
        kinds = proxy.kinds_snapshot()
    finally:
        proxy.close()
    reads = max(kinds["candidates"], 1)
    return {"statements": dict(kinds), "jobs_per_s_via_proxy": result["jobs_per_s"],
            "fallbacks_per_100": round(100 * kinds["lock_one_step"] / reads, 2),
            "locks_by_id_per_100": round(100 * kinds["lock_by_id"] / reads, 2)}
