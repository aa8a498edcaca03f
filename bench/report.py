"""The machine, the targets, and the table (text for the terminal, Markdown for docs/performance.md)."""
from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import subprocess
from typing import Any

from .daemon import ROOT


def machine(mariadb_version: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    model = ""
    try:
        for line in open("/proc/cpuinfo", encoding="ascii", errors="replace"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlalchemy
    import pymysql

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.rstrip()
        except OSError:
            return ""

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": model, "cores": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "mariadb": mariadb_version, "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__, "pymysql": pymysql.__version__,
        "loadavg_start": os.getloadavg(), "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty_files": [line[3:] for line in git("status", "--porcelain").splitlines()
                            if not line[3:].startswith("bench/")],
        **(extra or {}),
    }


def _get(data: dict, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


# figure, unit, path in each backend's results, target text, check(value) -> bool (or one per backend),
# backends the target applies to
ROWS: list[tuple[str, str, tuple[str, ...], str, Any, tuple[str, ...]]] = [
    ("first job after start (run -n 2)", "ms", ("startup", "first_job_ms"), "<= 300 ms", lambda v: v <= 300,
     ("sqlite", "mariadb")),
    ("enqueue one by one", "jobs/s", ("enqueue", "one_by_one", "jobs_per_s"), "", None, ()),
    ("enqueue_many (chunks of 1,000)", "jobs/s", ("enqueue", "enqueue_many", "jobs_per_s"), ">= 20,000 (MariaDB)",
     lambda v: v >= 20_000, ("mariadb",)),
    ("raw INSERT + commit loop", "jobs/s", ("enqueue", "raw_insert_commit", "jobs_per_s"), "", None, ()),
    ("one by one / raw", "%", ("enqueue", "one_by_one_vs_raw"), ">= 80%", lambda v: v >= 0.8, ("sqlite", "mariadb")),
    ("drain -n 1", "jobs/s", ("drain", "n1", "jobs_per_s"), "", None, ()),
    ("drain -n 2", "jobs/s", ("drain", "n2", "jobs_per_s"), ">= 5,000", lambda v: v >= 5_000, ("sqlite", "mariadb")),
    ("drain -n 4", "jobs/s", ("drain", "n4", "jobs_per_s"), "", None, ()),
    ("drain -n 8", "jobs/s", ("drain", "n8", "jobs_per_s"), "", None, ()),
    ("drain -n 4 / -n 2 (interleaved runs)", "%", ("drain", "n4_vs_n2"), ">= 95%", lambda v: v >= 0.95,
     ("sqlite", "mariadb")),
    ("drain -n 4 / -n 2, after the first job", "%", ("drain", "n4_vs_n2_after_first"), "", None, ()),
    ("one-step fallbacks per 100 candidate reads, -n 4", "/100", ("contention", "n4", "fallbacks_per_100"), "", None,
     ()),
    ("raw ceiling (2 procs, batches of 50)", "jobs/s", ("ceiling", "jobs_per_s"), "", None, ()),
    ("drain -n 2 / ceiling (median of rounds)", "%", ("drain_vs_ceiling",), ">= 90% MariaDB, >= 60% SQLite",
     {"mariadb": lambda v: v >= 0.9, "sqlite": lambda v: v >= 0.6}, ("mariadb", "sqlite")),
    ("pickup latency median", "ms", ("pickup", "median_ms"), "<= 50 ms; PostgreSQL (LISTEN) <= 5 ms",
     {"sqlite": lambda v: v <= 50, "mariadb": lambda v: v <= 50, "postgresql": lambda v: v <= 5},
     ("sqlite", "mariadb", "postgresql")),
    ("pickup latency p95", "ms", ("pickup", "p95_ms"), "<= 200 ms", lambda v: v <= 200, ("sqlite", "mariadb")),
    ("pickup latency max", "ms", ("pickup", "max_ms"), "", None, ()),
    ("pickup: the enqueue's own INSERT + commit", "ms", ("pickup", "enqueue_commit_median_ms"), "", None, ()),
    ("idle daemon queries (-n 2), its own", "q/s", ("pickup", "idle_own_queries_per_s"), "<= 5/s",
     lambda v: v <= 5, ("mariadb",)),
    ("idle daemon round trips (queries + pings)", "/s", ("pickup", "idle_own_round_trips_per_s"), "", None, ()),
    ("idle: server Questions minus background", "q/s", ("pickup", "idle_queries_per_s"), "", None, ()),
    ("idle daemon transactions (-n 2), all duties", "/s", ("pickup", "idle_transactions_per_s"), "", None, ()),
    ("idle daemon polling (-n 2, no heartbeats), its own", "q/s", ("pickup", "idle_polling_statements_per_s"),
     "<= 0.2/s (PostgreSQL)", lambda v: v <= 0.2, ("postgresql",)),
    ("idle daemon polling round trips", "/s", ("pickup", "idle_polling_round_trips_per_s"), "", None, ()),
    ("round trips per job (-n 1, MariaDB)", "/job", ("drain", "round_trips", "round_trips_per_job"), "", None, ()),
    ("backlog 1M vs 10k throughput", "ratio", ("backlog", "ratio"), ">= 0.8", lambda v: v >= 0.8, ("mariadb",)),
    ("worker RSS", "MiB", ("rss", "rss_mib"), "<= 60 MB", lambda v: v <= 60, ("sqlite", "mariadb")),
    # the stored_rows section's largest case: N rows for tomorrow and N failed (1M each by default)
    ("stored rows: idle poll", "ms", ("stored_rows", "largest", "poll_ms"), "<= 5 ms", lambda v: v <= 5,
     ("sqlite", "mariadb")),
    ("stored rows: Store.counts", "ms", ("stored_rows", "largest", "counts_ms"), "<= 50 ms", lambda v: v <= 50,
     ("sqlite", "mariadb")),
    ("stored rows: queue_depths (STATUS=)", "ms", ("stored_rows", "largest", "queue_depths_ms"), "<= 50 ms",
     lambda v: v <= 50, ("sqlite", "mariadb")),
    ("stored rows: long_jobs status", "ms", ("stored_rows", "largest", "status_ms"), "", None, ()),
    ("stored rows: pickup / empty table's, in turn", "ratio", ("stored_rows", "largest", "pickup_vs_empty"), "<= 1.00",
     lambda v: v <= 1.0, ("sqlite", "mariadb")),
    # bench/features.py: plain jobs drained with unique keys and concurrency limits in the code, and without
    ("plain drain -n 2, features in / out", "ratio", ("features", "with_over_without"), ">= 0.90",
     lambda v: v >= 0.9, ("sqlite", "mariadb", "postgresql")),
    ("the same, after the first job", "ratio", ("features", "with_over_without_after_first_job"), "", None, ()),
    ("reserve 10 behind 0 waiting of one key", "ms", ("features", "backlog_reserve_ms", "0"), "", None, ()),
    ("reserve 10 behind 1,000 waiting of one key", "ms", ("features", "backlog_reserve_ms", "1000"), "", None, ()),
    ("reserve 10 behind 10,000 waiting of one key", "ms", ("features", "backlog_reserve_ms", "10000"), "", None, ()),
]


#: The table's columns: backend key and heading.
BACKENDS = {"sqlite": "SQLite", "mariadb": "MariaDB", "postgresql": "PostgreSQL"}


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit in ("ratio",):
        return f"{value:.2f}"
    if unit in ("ms", "q/s", "MiB", "/s", "/job", "/100"):
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def rows(results: dict[str, dict]) -> list[dict[str, Any]]:
    out = []
    for figure, unit, path, target, check, applies in ROWS:
        row: dict[str, Any] = {"figure": figure, "unit": unit, "target": target}
        for backend in BACKENDS:
            value = _get(results.get(backend, {}), *path)
            row[backend] = value
            verdict = ""
            passes = check.get(backend) if isinstance(check, dict) else check  # a check per backend, or one
            if passes and backend in applies:
                verdict = "n/a" if value is None else ("PASS" if passes(value) else "FAIL")
            row[f"{backend}_verdict"] = verdict
        out.append(row)
    return out


def _cell(row: dict[str, Any], backend: str) -> str:
    text = _fmt(row[backend], row["unit"])
    return f"{text} {row[backend + '_verdict']}".strip()


def text_table(table: list[dict[str, Any]]) -> str:
    header = ("figure", "unit", *BACKENDS.values(), "target")
    lines = [(r["figure"], r["unit"], *(_cell(r, b) for b in BACKENDS), r["target"]) for r in table]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'<' if i in (0, 1, len(header) - 1) else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*x) for x in lines])


def markdown_table(table: list[dict[str, Any]]) -> str:
    lines = [f"| figure | unit | {' | '.join(BACKENDS.values())} | target |",
             "|---|---|" + "---:|" * len(BACKENDS) + "---|"]
    for r in table:
        cells = " | ".join(_cell(r, b) for b in BACKENDS)
        lines.append(f"| {r['figure']} | {r['unit']} | {cells} | {r['target']} |")
    return "\n".join(lines)
