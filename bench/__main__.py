"""``python -m bench [--quick] [--only SECTIONS] [--backends sqlite,mariadb]``: see ``bench/__init__.py``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import create_engine, text

from . import charts, contention, features, report, sections, startup, stored_rows, web
from .backends import MYSQL_SERVER, POSTGRESQL_SERVER, Backend, MariaDB, PostgreSQL, SQLite
from .daemon import ROOT, fill_bytecode

SECTIONS = ("startup", "enqueue", "drain", "contention", "ceiling", "pickup", "backlog", "rss", "web", "stored_rows",
            "features")
RESULTS = ROOT / "bench" / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="short run: 2,000 enqueues, 5,000-job drains with -n 2 only, no backlog or RSS run")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--backends", default="sqlite,mariadb,postgresql",
                        help="comma-separated; a server that does not answer is left out, saying so")
    parser.add_argument("--runs", type=int, help="runs per figure (median taken; at least 3 by default)")
    parser.add_argument("--drain-jobs", type=int, dest="drain_jobs")
    parser.add_argument("--drain-workers", dest="drain_workers", type=lambda text: tuple(int(n) for n in text.split(",")),
                        help="drain section: comma-separated worker counts of the curve (default 1,2,4,8)")
    parser.add_argument("--drain-cap", type=float, dest="drain_cap",
                        help="seconds after which a drain run stops and reports jobs done / time")
    parser.add_argument("--enqueue-jobs", type=int, dest="enqueue_jobs")
    parser.add_argument("--stored-rows", dest="stored_rows", type=lambda text: tuple(int(n) for n in text.split(",")),
                        help="stored_rows section: comma-separated counts of rows for tomorrow (default 0,100000,"
                             "1000000); the largest is also run as rows failed for good")
    parser.add_argument("--output", default=str(RESULTS / "latest.json"))
    return parser.parse_args(argv)


def mariadb_version() -> str | None:
    try:
        engine = create_engine(MYSQL_SERVER, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            version = conn.execute(text("SELECT VERSION()")).scalar()
            settings = dict(conn.execute(text(
                "SHOW VARIABLES WHERE Variable_name IN ('innodb_flush_log_at_trx_commit', "
                "'innodb_buffer_pool_size', 'log_bin', 'sync_binlog')")).all())
        engine.dispose()
        return f"{version} ({', '.join(f'{k}={v}' for k, v in sorted(settings.items()))})"
    except Exception as exc:
        print(f"MariaDB unreachable at {MYSQL_SERVER}: {exc}", file=sys.stderr)
        return None


def postgresql_version() -> str | None:
    try:
        engine = create_engine(POSTGRESQL_SERVER, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
            settings = {name: conn.execute(text(f"SHOW {name}")).scalar()
                        for name in ("synchronous_commit", "shared_buffers", "wal_level")}
        engine.dispose()
        return f"{version} ({', '.join(f'{k}={v}' for k, v in sorted(settings.items()))})"
    except Exception as exc:
        print(f"PostgreSQL unreachable at {POSTGRESQL_SERVER}: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    plan = sections.Plan.make(args.quick, runs=args.runs, drain_jobs=args.drain_jobs, drain_cap=args.drain_cap,
                              enqueue_jobs=args.enqueue_jobs, stored_rows=args.stored_rows,
                              drain_workers=args.drain_workers)
    only = [s for s in args.only.split(",") if s]
    plan.ceiling_in_drain = "drain" in only and "ceiling" in only and only.index("drain") < only.index("ceiling")
    version = mariadb_version()
    names = [b for b in args.backends.split(",") if b]
    pg_version = postgresql_version() if "postgresql" in names else None
    backends = [b for b in names if (b != "mariadb" or version) and (b != "postgresql" or pg_version)]
    started = time.monotonic()
    out: dict[str, Any] = {"plan": vars(plan), "machine": report.machine(version, {"postgresql": pg_version}),
                           "results": {}, "errors": []}
    print(f"bench: {'quick' if plan.quick else 'full'} run, sections {','.join(only)} on {','.join(backends)}",
          flush=True)
    folder = Path(tempfile.mkdtemp(prefix="dj-bench-"))
    fill_bytecode(f"sqlite:///{folder / 'none.sqlite3'}")
    try:
        for name in backends:
            backend: Backend = SQLite(folder) if name == "sqlite" else PostgreSQL() if name == "postgresql" \
                else MariaDB()
            results: dict[str, Any] = out["results"].setdefault(name, {})
            try:
                for section in only:
                    if section == "backlog" and (name != "mariadb" or not plan.backlog):
                        continue
                    if section == "rss" and not plan.rss_jobs:
                        continue
                    if section == "ceiling" and "ceiling" in results.get("drain", {}):
                        results["ceiling"] = results["drain"].pop("ceiling")  # its runs were the drain's rounds'
                        continue
                    modules = {"web": web, "stored_rows": stored_rows, "startup": startup, "contention": contention,
                               "features": features}
                    measure: Callable = getattr(modules.get(section, sections), f"section_{section}")
                    t0 = time.monotonic()
                    print(f"  {name:8} {section:8} ...", end="", flush=True)
                    try:
                        results[section] = measure(backend, plan, folder)
                        print(f" {time.monotonic() - t0:5.1f}s", flush=True)
                    except Exception as exc:
                        print(f" FAILED: {str(exc).splitlines()[0]}", flush=True)
                        out["errors"].append({"backend": name, "section": section, "error": str(exc),
                                              "traceback": traceback.format_exc()})
            finally:
                backend.close()
            drain = sections.median([r["jobs_per_s"] for r in results.get("drain", {}).get("n2", {}).get("runs", [])])
            ceiling = results.get("ceiling", {}).get("jobs_per_s")
            if "n2_vs_ceiling" in results.get("drain", {}):
                results["drain_vs_ceiling"] = results["drain"]["n2_vs_ceiling"]  # round by round
            elif drain and ceiling:
                results["drain_vs_ceiling"] = round(drain / ceiling, 3)
            if "rss" not in results and "drain" in results:  # quick: the drain runs' workers
                samples = [v for k in results["drain"].values() if isinstance(k, dict)
                           for r in k.get("runs", []) for v in r.get("worker_rss_mib", [])]
                if samples:
                    results["rss"] = {"rss_mib": sections.median(samples), "from": "drain runs' workers at the end"}
    finally:
        for leftover in folder.glob("*"):
            leftover.unlink()
        folder.rmdir()
    out["machine"]["loadavg_end"] = os.getloadavg()
    out["machine"]["bench_seconds"] = round(time.monotonic() - started, 1)
    out["table"] = report.rows(out["results"])
    print()
    print(report.text_table(out["table"]))
    for error in out["errors"]:
        print(f"\nERROR in {error['backend']} {error['section']}: {error['error']}", file=sys.stderr)
    capped = [f"{b} {s}" for b, res in out["results"].items() for s, v in res.items()
              if isinstance(v, dict) and '"capped": true' in json.dumps(v)]
    if capped:
        print(f"\nsome runs hit their time cap (rate = jobs done / time): {', '.join(capped)}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    try:
        out["charts"] = [str(path) for path in charts.draw(out["results"], Path(args.output))]
    except charts.ChartError as exc:
        print(f"\nERROR drawing the charts: {exc}", file=sys.stderr)
        out["errors"].append({"backend": "", "section": "charts", "error": str(exc)})
    Path(args.output).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"\n{out['machine']['bench_seconds']:.0f}s; results in {args.output}"
          + "".join(f"\nchart: {path}" for path in out.get("charts", [])))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
