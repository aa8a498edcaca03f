"""The measurements, one function per section of the brief (a-f); each returns plain JSON data."""
from __future__ import annotations

import json
import math
import random
import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import event

from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.job import NewJob, utcnow
from dj_daemon.processes import children_of
from dj_daemon.store import Filters, open_store

from . import jobs
from .backends import Backend, PostgreSQL, server_status
from .proxy import CountingProxy, round_trips as proxy_round_trips, statements as proxy_statements
from .daemon import BenchError, start_ceiling, start_daemon, timed_drain, vm_rss_mib

NOOP = "bench.jobs:noop"


@dataclass
class Plan:
    quick: bool
    runs: int = 3
    enqueue_jobs: int = 10_000
    enqueue_cap: float = 6.0
    drain_jobs: int = 20_000
    drain_workers: tuple[int, ...] = (1, 2, 4, 8)  # the drain curve (charts.py draws it)
    drain_cap: float = 30.0  # a safety net: every drain is timed until the queue is empty
    ceiling_cap: float = 20.0
    pickup_jobs: int = 20
    idle_seconds: float = 10.0
    baseline_seconds: float = 5.0
    backlog: bool = True
    backlog_rows: int = 1_000_000
    backlog_small: int = 10_000
    backlog_drain: int = 20_000
    backlog_cap: float = 10.0
    rss_jobs: int = 10_000
    rss_cap: float = 30.0
    stored_rows: tuple[int, ...] = (0, 100_000, 1_000_000)  # rows for tomorrow; the largest failed too
    #: the raw ceiling's runs go in the drain's rounds (set when both sections are asked for)
    ceiling_in_drain: bool = False

    @classmethod
    def make(cls, quick: bool, **overrides: Any) -> "Plan":
        plan = cls(quick=quick)
        if quick:
            plan = cls(quick=True, enqueue_jobs=2_000, enqueue_cap=2.0, drain_jobs=5_000, drain_workers=(2,),
                       drain_cap=10.0, ceiling_cap=10.0, pickup_jobs=8, idle_seconds=5.0, baseline_seconds=2.0,
                       backlog=False, rss_jobs=0,
                       stored_rows=(0, 10_000))
        for key, value in overrides.items():
            if value is not None:
                setattr(plan, key, value)
        return plan


def config_for(backend: Backend) -> Config:
    return Config(url=backend.url, allowed_modules=("bench",), log_level="WARNING")


def queue_for(backend: Backend) -> Queue:
    """A queue whose store has already connected once, as in a running application."""
    queue = Queue(config_for(backend))
    with queue.store.engine.connect():
        pass
    return queue


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def noop_rows(backend: Backend, n: int, side_effects: Path, token: Callable[[int], str] = str) -> list[dict]:
    """``n`` rows exactly as ``Queue.enqueue_many`` would insert them (prepared by the queue itself)."""
    queue = Queue(config_for(backend))
    now = utcnow()
    return [queue.prepare(jobs.noop, str(side_effects), token(i)).to_row(now) for i in range(n)]


# -- a. enqueue ----------------------------------------------------------------------------
def enqueue_one_by_one(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    queue = queue_for(backend)
    path = str(folder / "never-run.txt")
    done, t0 = 0, time.perf_counter()
    for i in range(plan.enqueue_jobs):
        queue.enqueue(jobs.noop, path, str(i))
        done += 1
        if done % 100 == 0 and time.perf_counter() - t0 > plan.enqueue_cap:
            break
    elapsed = time.perf_counter() - t0
    queue.store.dispose()
    return _enqueued(backend, done, elapsed, plan)


def enqueue_many(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    queue = queue_for(backend)
    path = str(folder / "never-run.txt")
    t0 = time.perf_counter()
    for start in range(0, plan.enqueue_jobs, 1000):
        queue.enqueue_many([queue.prepare(jobs.noop, path, str(i))
                            for i in range(start, min(start + 1000, plan.enqueue_jobs))])
    elapsed = time.perf_counter() - t0
    queue.store.dispose()
    return _enqueued(backend, plan.enqueue_jobs, elapsed, plan)


def enqueue_raw(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    """The reference: one INSERT and one commit per job with the bare driver, same columns and values."""
    path = str(folder / "never-run.txt")
    shape = NewJob(handler="", name="").to_row(utcnow())
    columns = list(shape)
    times = {"run_at", "created_at", "updated_at"}
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.path, timeout=30)  # implicit BEGIN before the INSERT, commit()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        marks = ", ".join("?" * len(columns))
        convert: Callable[[Any], Any] = backend.value
    else:  # PostgreSQL's psycopg opens a transaction itself, at READ COMMITTED by default
        conn = backend.raw() if backend.name == "postgresql" else backend.raw(autocommit=False)
        if backend.name == "mariadb":
            conn.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        marks = ", ".join(["%s"] * len(columns))
        convert = lambda v: v  # noqa: E731
    sql = f"INSERT INTO delayed_jobs ({', '.join(columns)}) VALUES ({marks})"
    cur = conn.cursor()
    done, t0 = 0, time.perf_counter()
    for i in range(plan.enqueue_jobs):
        handler = json.dumps({"target": NOOP, "args": [path, str(i)], "kwargs": {}}, separators=(",", ":"))
        now = convert(utcnow())
        cur.execute(sql, [handler if c == "handler" else now if c in times else shape[c] for c in columns])
        conn.commit()
        done += 1
        if done % 100 == 0 and time.perf_counter() - t0 > plan.enqueue_cap:
            break
    elapsed = time.perf_counter() - t0
    conn.close()
    return _enqueued(backend, done, elapsed, plan)


def _enqueued(backend: Backend, done: int, elapsed: float, plan: Plan) -> dict[str, Any]:
    conn = backend.raw()
    rows = backend.count(conn)
    conn.close()
    if rows != done:
        raise BenchError(f"{done} enqueued but {rows} rows in the table")
    return {"jobs": done, "elapsed_s": round(elapsed, 4), "jobs_per_s": round(done / elapsed, 1),
            "capped": done < plan.enqueue_jobs}


def section_enqueue(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    modes = {"one_by_one": enqueue_one_by_one, "enqueue_many": enqueue_many, "raw_insert_commit": enqueue_raw}
    runs: dict[str, list] = {mode: [] for mode in modes}
    for _ in range(plan.runs):
        for mode, measure in modes.items():
            backend.reset()
            runs[mode].append(measure(backend, plan, folder))
    out: dict[str, Any] = {mode: {"jobs_per_s": median([r["jobs_per_s"] for r in rs]), "runs": rs}
                           for mode, rs in runs.items()}
    out["one_by_one_vs_raw"] = round(out["one_by_one"]["jobs_per_s"] / out["raw_insert_commit"]["jobs_per_s"], 3)
    return out


# -- b/e/f. drain ------------------------------------------------------------------------------
def _drain_once(backend: Backend, plan: Plan, folder: Path, label: str, n: int, cap: float,
                start: Callable[[], list], **options: Any) -> dict[str, Any]:
    backend.reset()
    side_effects = folder / f"{backend.name}-{label}.txt"
    side_effects.unlink(missing_ok=True)
    backend.load(noop_rows(backend, n, side_effects))
    return timed_drain(backend, start, n, cap, side_effects, **options)


def section_drain(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    """The worker counts' runs interleaved (-n 1, 2, 4, 8, then again), so that the host's load at
    any moment weighs on each count alike; their medians, and -n 4's against -n 2's. With
    ``plan.ceiling_in_drain``, each round ends with a run of the raw ceiling, and -n 2's ratio to
    it is the median of the rounds' ratios (each against its own round's ceiling)."""
    runs: dict[int, list[dict[str, Any]]] = {k: [] for k in plan.drain_workers}
    ceilings: list[dict[str, Any]] = []
    for r in range(plan.runs):
        for k in plan.drain_workers:
            runs[k].append(_drain_once(backend, plan, folder, f"drain-n{k}-{r}", plan.drain_jobs, plan.drain_cap,
                                       lambda: [start_daemon(backend.url, k)], rss_of_workers=True,
                                       count_statements=(k == 2)))
        if plan.ceiling_in_drain:
            ceilings.append(_ceiling_once(backend, plan, folder, r))
    out: dict[str, Any] = {f"n{k}": {"jobs_per_s": median([r["jobs_per_s"] for r in rs]), "runs": rs}
                           for k, rs in runs.items()}
    if ceilings:
        out["ceiling"] = _ceiling_of(ceilings)
        if 2 in runs:
            ratios = [d["jobs_per_s"] / c["jobs_per_s"] for d, c in zip(runs[2], ceilings)]
            out["n2_vs_ceiling_by_round"] = [round(v, 3) for v in ratios]
            out["n2_vs_ceiling"] = round(median(ratios), 3)
    for k, rs in runs.items():  # without the start-up, which takes longer with more workers
        out[f"n{k}"]["jobs_per_s_after_first"] = median([r.get("jobs_per_s_after_first") for r in rs])
    if "n2" in out and "n4" in out:
        out["n4_vs_n2"] = round(out["n4"]["jobs_per_s"] / out["n2"]["jobs_per_s"], 3)
        after_first = (out["n4"]["jobs_per_s_after_first"], out["n2"]["jobs_per_s_after_first"])
        out["n4_vs_n2_after_first"] = round(after_first[0] / after_first[1], 3) if all(after_first) else None
    if backend.name == "mariadb":
        out["round_trips"] = round_trips_per_job(backend, folder)
    return out


def round_trips_per_job(backend: Backend, folder: Path, n: int = 500) -> dict[str, Any]:
    """MariaDB: one worker (-n 1) through the counting proxy, ``n`` jobs, untimed: commands sent per job."""
    backend.reset()
    side_effects = folder / f"{backend.name}-trips.txt"
    side_effects.unlink(missing_ok=True)
    backend.load(noop_rows(backend, n, side_effects))
    proxy = CountingProxy(backend.url)
    try:
        result = timed_drain(backend, lambda: [start_daemon(proxy.url, 1)], n, 120.0, side_effects)
        counts = proxy.snapshot()
    finally:
        proxy.close()
    return {"jobs": n, "per_job": {k: round(v / n, 2) for k, v in sorted(counts.items())},
            "round_trips_per_job": round(sum(counts.values()) / n, 2), "via_proxy_jobs_per_s": result["jobs_per_s"],
            "note": "includes the supervisor's start-up, heartbeats and status queries over the run"}


def _ceiling_once(backend: Backend, plan: Plan, folder: Path, r: int) -> dict[str, Any]:
    return _drain_once(backend, plan, folder, f"ceiling-{r}", plan.drain_jobs, plan.ceiling_cap,
                       lambda: start_ceiling(backend, 2))


def _ceiling_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"jobs_per_s": median([r["jobs_per_s"] for r in runs]), "processes": 2, "batch": 50, "runs": runs}


def section_ceiling(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    """The raw ceiling alone (with ``drain`` asked for too, its runs are in the drain's rounds)."""
    return _ceiling_of([_ceiling_once(backend, plan, folder, r) for r in range(plan.runs)])


def section_rss(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    """One worker (-n 1) through ``rss_jobs`` jobs (or ``rss_cap`` seconds): VmRSS every 0.5 s."""
    backend.reset()
    side_effects = folder / f"{backend.name}-rss.txt"
    side_effects.unlink(missing_ok=True)
    n = plan.rss_jobs
    backend.load(noop_rows(backend, n, side_effects))
    poller = backend.raw()
    daemon = start_daemon(backend.url, 1)
    samples: list[tuple[float, int, float]] = []
    try:
        while True:
            time.sleep(0.5)
            left = backend.count(poller)
            elapsed = time.perf_counter() - daemon.started
            kids = children_of(daemon.proc.pid)
            rss = vm_rss_mib(kids[0]) if kids else None
            if rss is not None:
                samples.append((round(elapsed, 2), n - left, round(rss, 1)))
            if left == 0 or elapsed > plan.rss_cap:
                break
            if daemon.proc.poll() is not None:
                raise BenchError(f"daemon exited:\n{daemon.tail()}")
        code = daemon.stop()
    finally:
        daemon.close()
    left = backend.count(poller)
    poller.close()
    seen = side_effects.read_text().split() if side_effects.exists() else []
    if code or len(seen) != len(set(seen)) or len(seen) != n - left:
        raise BenchError(f"rss run: exit {code}, {len(seen)} side effects for {n - left} jobs")
    return {"jobs_done": samples[-1][1] if samples else 0, "rss_mib": samples[-1][2] if samples else None,
            "first_sample_mib": samples[0][2] if samples else None, "samples": samples}


# -- c. pickup latency and idle query rate -------------------------------------------------------
#: PostgreSQL's idle window, at least, and the wait before it: its statistics arrive up to 10 s late
#: (``PostgreSQL.transactions``).
PG_IDLE_SECONDS, PG_SETTLE_SECONDS = 20.0, 11.0
#: PostgreSQL's idle polling window: three of the safety poll's periods (``listen.SAFETY_POLL``).
PG_POLLING_SECONDS = 30.0
#: Heartbeats off: what an idle daemon then sends is its polling (the safety poll, the queue
#: reading, the cancel requests' reads).
NO_HEARTBEATS = {"DJ_HEARTBEAT_INTERVAL": "3600", "DJ_HEARTBEAT_TIMEOUT": "7200"}


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _rate(conn: Any, seconds: float) -> dict[str, float]:
    """Counter deltas per second over ``seconds``, minus the second SHOW STATUS itself."""
    before = server_status(conn)
    t0 = time.perf_counter()
    time.sleep(seconds)
    after = server_status(conn)
    elapsed = time.perf_counter() - t0
    delta = {k: after[k] - before[k] for k in before}
    delta["Questions"] -= 1
    return {k: round(v / elapsed, 2) for k, v in delta.items()}


def _registered(daemon: Any, poller: Any, workers: int = 2) -> Callable[[], bool]:
    def registered() -> bool:
        if daemon.proc.poll() is not None:
            raise BenchError(f"daemon exited:\n{daemon.tail()}")
        cur = poller.cursor()
        cur.execute("SELECT COUNT(*) FROM delayed_job_workers")
        return cur.fetchone()[0] >= workers
    return registered


def idle_polling(backend: PostgreSQL) -> dict[str, Any]:
    """PostgreSQL: an idle ``-n 2`` daemon listening, its heartbeats off, through the counting
    proxy: the statements and round trips it sends per second, counted by the proxy as they go
    (so no wait for the server's statistics), over ``PG_POLLING_SECONDS``."""
    proxy = CountingProxy(backend.url)
    daemon = start_daemon(proxy.url, 2, **NO_HEARTBEATS)
    poller = backend.raw()
    try:
        _wait(_registered(daemon, poller), 30, "2 workers registered")
        time.sleep(2.0)  # listening, both workers waiting
        before, t0 = proxy.snapshot(), time.perf_counter()
        time.sleep(PG_POLLING_SECONDS)
        own, elapsed = proxy.snapshot() - before, time.perf_counter() - t0
        if daemon.stop():
            raise BenchError(f"idle daemon did not exit 0:\n{daemon.tail()}")
    finally:
        daemon.close()
        poller.close()
        proxy.close()
    return {"idle_polling_statements_per_s": round(proxy_statements(own) / elapsed, 3),
            "idle_polling_round_trips_per_s": round(proxy_round_trips(own) / elapsed, 3),
            "idle_polling_messages": dict(own)}


def section_pickup(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    runs = []
    for r in range(plan.runs):
        backend.reset()
        result: dict[str, Any] = idle_polling(backend) if isinstance(backend, PostgreSQL) else {}
        counters = backend.raw() if backend.name == "mariadb" else None
        proxy = CountingProxy(backend.url) if counters else None
        if counters:
            result["background_per_s"] = _rate(counters, plan.baseline_seconds)
        daemon = start_daemon(proxy.url if proxy else backend.url, 2)
        try:
            poller = backend.raw()
            _wait(_registered(daemon, poller), 30, "2 workers registered")
            time.sleep(2.0)  # both workers have polled once and sleep (sleep_delay)
            if counters and proxy:
                before, t0 = proxy.snapshot(), time.perf_counter()
                rate = _rate(counters, plan.idle_seconds)
                own = proxy.snapshot() - before
                elapsed = time.perf_counter() - t0
                result["idle_own_per_s"] = {k: round(v / elapsed, 2) for k, v in own.items()}
                result["idle_own_queries_per_s"] = round(own["query"] / elapsed, 2)
                result["idle_own_round_trips_per_s"] = round(sum(own.values()) / elapsed, 2)
                background = result["background_per_s"]
                result["idle_per_s"] = rate
                result["idle_queries_per_s"] = round(rate["Questions"] - background["Questions"], 2)
                result["idle_pings_per_s"] = round(rate["Com_admin_commands"] - background["Com_admin_commands"], 2)
            if isinstance(backend, PostgreSQL):
                time.sleep(PG_SETTLE_SECONDS)  # the start-up's transactions all reported first
                first, t0 = backend.transactions(), time.perf_counter()
                time.sleep(max(plan.idle_seconds, PG_IDLE_SECONDS))
                result["idle_transactions_per_s"] = round((backend.transactions() - first) / (time.perf_counter() - t0), 2)
            queue = queue_for(backend)
            side_effects = folder / f"{backend.name}-pickup-{r}.txt"
            side_effects.unlink(missing_ok=True)
            rng = random.Random(r)
            committed: list[float] = []  # PostgreSQL: how long each enqueue's INSERT and commit took
            for i in range(plan.pickup_jobs):
                time.sleep(rng.uniform(0.2, 0.5))
                if isinstance(backend, PostgreSQL):  # no same-host nudge: LISTEN/NOTIFY alone, as from another host
                    enqueued = time.time()
                    queue.store.insert([queue.prepare(jobs.stamp, str(side_effects), f"p{i}", enqueued)])
                    committed.append((time.time() - enqueued) * 1000)
                else:
                    queue.enqueue(jobs.stamp, str(side_effects), f"p{i}", time.time())
            queue.store.dispose()

            def lines() -> list[str]:
                return side_effects.read_text().splitlines() if side_effects.exists() else []
            _wait(lambda: len(lines()) >= plan.pickup_jobs, 60, "pickup jobs to run")
            poller.close()
            code = daemon.stop()
        finally:
            daemon.close()
            if counters:
                counters.close()
            if proxy:
                proxy.close()
        found = [line.split() for line in lines()]
        if code or len({f[0] for f in found}) != plan.pickup_jobs or len(found) != plan.pickup_jobs:
            raise BenchError(f"pickup run: exit {code}, {len(found)} lines for {plan.pickup_jobs} jobs")
        latencies = sorted((float(started) - float(enqueued)) * 1000 for _, enqueued, started in found)
        result.update({"latencies_ms": [round(v, 1) for v in latencies],
                       "median_ms": round(statistics.median(latencies), 1),
                       "p95_ms": round(percentile(latencies, 0.95), 1), "max_ms": round(latencies[-1], 1)})
        if committed:
            result["enqueue_commit_median_ms"] = round(statistics.median(committed), 1)
        runs.append(result)
    pooled = [v for r in runs for v in r["latencies_ms"]]
    out: dict[str, Any] = {
        "median_ms": median([r["median_ms"] for r in runs]), "p95_ms": median([r["p95_ms"] for r in runs]),
        "max_ms": median([r["max_ms"] for r in runs]),
        "pooled": {"median_ms": round(statistics.median(pooled), 1), "p95_ms": round(percentile(pooled, 0.95), 1),
                   "max_ms": max(pooled)},
        "runs": runs,
    }
    if backend.name == "mariadb":
        out["idle_own_queries_per_s"] = median([r["idle_own_queries_per_s"] for r in runs])
        out["idle_own_round_trips_per_s"] = median([r["idle_own_round_trips_per_s"] for r in runs])
        out["idle_queries_per_s"] = median([r["idle_queries_per_s"] for r in runs])
        out["idle_pings_per_s"] = median([r["idle_pings_per_s"] for r in runs])
        out["background_queries_per_s"] = median([r["background_per_s"]["Questions"] for r in runs])
    if isinstance(backend, PostgreSQL):
        out["idle_transactions_per_s"] = median([r["idle_transactions_per_s"] for r in runs])
        out["idle_polling_statements_per_s"] = median([r["idle_polling_statements_per_s"] for r in runs])
        out["idle_polling_round_trips_per_s"] = median([r["idle_polling_round_trips_per_s"] for r in runs])
        out["enqueue_commit_median_ms"] = median([r["enqueue_commit_median_ms"] for r in runs])
    return out


# -- d. backlog (MariaDB) ------------------------------------------------------------------------
def _fill(backend: Backend, rows: int, side_effects: Path) -> float:
    """``rows`` identical no-op jobs: 10,000 by multi-row INSERTs, then INSERT ... SELECT doubling."""
    t0 = time.perf_counter()
    backend.reset()
    seed = min(rows, 10_000)
    backend.load(noop_rows(backend, seed, side_effects, token=lambda i: "b"))
    columns = [c for c in noop_rows(backend, 1, side_effects)[0]]
    conn = backend.raw()
    cur = conn.cursor()
    have = seed
    while have < rows:
        more = min(have, rows - have)
        cur.execute(f"INSERT INTO delayed_jobs ({', '.join(columns)}) SELECT {', '.join(columns)} "
                    f"FROM delayed_jobs ORDER BY id LIMIT {more}")
        have += more
    cur.execute("ANALYZE TABLE delayed_jobs")
    cur.fetchall()
    conn.close()
    return round(time.perf_counter() - t0, 1)


def reservation_sql(backend: Backend, limit: int = 1) -> str:
    """The first SELECT of the store's reservation (``Store.lock_ready``), the one that searches the
    queue, as this server runs it, its values inlined by the driver (``mogrify``). On MariaDB it is
    the plain read of ``common.reserve_by_id``; its second statement locks the ids found by primary
    key. The reservation runs for real, in a transaction rolled back (the list of stored priorities
    it reads first, ``common.ListedPriorities``, is not the one asked for)."""
    store = open_store(config_for(backend))
    sent: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "DISTINCT" not in statement and not sent:
            sent.append(cursor.mogrify(statement, parameters))
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.engine.connect() as conn:
            with conn.begin() as transaction:
                store.lock_ready(conn, "bench:explain", Filters(), utcnow(), limit)
                transaction.rollback()
        return sent[0]
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
        store.dispose()


def explain(backend: Backend, sql: str) -> dict[str, Any]:
    """EXPLAIN, then ANALYZE (which runs it: rolled back) and the query's own time, median of 5."""
    conn = backend.raw(autocommit=False)
    cur = conn.cursor()
    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")

    def table(statement: str) -> list[dict[str, Any]]:
        cur.execute(statement)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
        conn.rollback()
        return rows

    out: dict[str, Any] = {"explain": table(f"EXPLAIN {sql}")}
    try:
        out["analyze"] = table(f"ANALYZE {sql}")
    except Exception as exc:  # ANALYZE of a locking select is refused by some versions
        out["analyze_error"] = str(exc)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        cur.execute(sql)
        cur.fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        conn.rollback()
    out["query_ms"] = round(statistics.median(times), 2)
    conn.close()
    return out


def _backlog_run(backend: Backend, side_effects: Path, target: int, cap: float) -> dict[str, Any]:
    """Daemon -n 2 until ``target`` more jobs have run (side-effect lines, all the same length) or ``cap``."""
    line = len("b\n")

    def lines() -> int:
        return side_effects.stat().st_size // line if side_effects.exists() else 0

    conn = backend.raw()
    queued_before = backend.count(conn)
    start_lines = lines()
    daemon = start_daemon(backend.url, 2)
    series: list[tuple[float, int]] = []
    try:
        while True:
            done = lines() - start_lines
            now = time.perf_counter() - daemon.started
            series.append((now, done))
            if done >= target or now > cap:
                break
            if daemon.proc.poll() is not None:
                raise BenchError(f"daemon exited:\n{daemon.tail()}")
            time.sleep(0.02)
        code = daemon.stop()
    finally:
        daemon.close()
    queued_after = backend.count(conn)
    conn.close()
    ran = lines() - start_lines
    if code or ran != queued_before - queued_after:
        raise BenchError(f"backlog run: exit {code}, {ran} side effects for {queued_before - queued_after} jobs")
    elapsed, done = series[-1]
    warm = next(((t, d) for t, d in series if d >= max(1, min(target // 20, 100))), series[-1])
    steady = (done - warm[1]) / (elapsed - warm[0]) if elapsed > warm[0] else None
    return {"queued": queued_before, "target": target, "done": done, "elapsed_s": round(elapsed, 3),
            "jobs_per_s": round(done / elapsed, 1), "steady_jobs_per_s": steady and round(steady, 1),
            "capped": done < target}


def section_backlog(backend: Backend, plan: Plan, folder: Path) -> dict[str, Any]:
    side_effects = folder / "backlog.txt"
    side_effects.unlink(missing_ok=True)
    backend.reset()  # an empty queue to reserve from: this section may run alone
    before_fill = reservation_sql(backend)  # its "now" precedes every row's run_at: no job is due
    out: dict[str, Any] = {"large": {"rows": plan.backlog_rows, "fill_s": _fill(backend, plan.backlog_rows, side_effects)}}
    out["reservation_sql"] = reservation_sql(backend)
    out["large"]["plan"] = explain(backend, out["reservation_sql"])
    out["large"]["plan_none_due"] = explain(backend, before_fill)
    out["large"]["runs"] = [_backlog_run(backend, side_effects, plan.backlog_drain, plan.backlog_cap)
                            for _ in range(plan.runs)]
    small_runs = []
    for r in range(plan.runs):
        side_effects.unlink(missing_ok=True)
        fill = _fill(backend, plan.backlog_small, side_effects)
        if r == 0:
            out["small"] = {"rows": plan.backlog_small, "fill_s": fill,
                            "plan": explain(backend, reservation_sql(backend)),
                            "plan_none_due": explain(backend, before_fill)}
        small_runs.append(_backlog_run(backend, side_effects, plan.backlog_small, plan.backlog_cap))
    out["small"]["runs"] = small_runs
    for size in ("large", "small"):
        runs = out[size]["runs"]
        out[size]["steady_jobs_per_s"] = median([r["steady_jobs_per_s"] for r in runs])
        out[size]["jobs_per_s"] = median([r["jobs_per_s"] for r in runs])
    out["ratio"] = round(out["large"]["steady_jobs_per_s"] / out["small"]["steady_jobs_per_s"], 3)
    backend.reset()
    return out

