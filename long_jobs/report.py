"""Rendering for ``long_jobs``: the status table, its JSON form, drain progress, job lists."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

STATE_ORDER = ("enqueued", "running", "completed", "error", "deferred", "rejected_shutting_down")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _sentinel(name: str, since: str | None, odd_kind: str | None) -> str:
    """A sentinel as present; one that is not a regular file is flagged: drain never makes one."""
    if odd_kind is None:
        return f"{name} since {since}"
    return f"{name} (a {odd_kind}, not a file drain wrote: it still drains; `long_jobs restart` removes it)"


def job_line(row: dict[str, Any]) -> str:
    return (f"{row['id']:>7} {row['state']:23} {row['job_class'][:40]:40} {row['identifier'][:20]:20} "
            f"{(row['hostname'] or '-')[:20]:20} {_when(row['updated_at'])}")


JOB_HEADER = f"{'id':>7} {'state':23} {'class':40} {'identifier':20} {'host':20} updated (UTC)"


def status_text(snap: dict[str, Any]) -> str:
    """The human-readable status: sections separated by blank lines."""
    out = [f"host {snap['host']}   database {snap['database']}"]
    if snap["draining"]:
        out.append("DRAINING: " + ", ".join(_sentinel(name, since, snap["odd_sentinels"].get(name))
                                            for name, since in snap["draining"].items()))
    else:
        out.append("draining: no (no sentinel file)")
    daemon = snap["daemon"]
    out.append(f"daemon: {daemon['state']} ({daemon['manager']})")
    out += ["", "workers:"] + ([f"  {w['name']:30} last seen {_seconds(w['age_s'])} ago"
                                f"{'  job ' + str(w['current_job_id']) if w['current_job_id'] else ''}"
                                f"{'  DEAD (' + w['dead'] + ')' if w['dead'] else ''}"
                                for w in snap["workers"]] or ["  none"])
    queue = snap["queue"]
    out += ["", f"work queue: {queue['waiting']} waiting, {queue['running']} running, {queue['failed']} failed",
            "tracked jobs: " + ", ".join(f"{snap['states'].get(s, 0)} {s}" for s in STATE_ORDER)]
    out += ["", "running:"] + ([f"  {r['id']:>7} {r['job_class']} {r['identifier']} on {r['hostname']} "
                                f"for {_seconds(r['elapsed_s'])} ({r['locked_by'] or 'no lock'})"
                                for r in snap["running"]] or ["  none"])
    out += ["", "stalled (running, worker gone):"] + (
        [f"  {r['id']:>7} {r['job_class']} {r['identifier']}: {r['reason']}" for r in snap["stalled"]] or ["  none"])
    out += ["", "parked, waiting for `long_jobs restart`:"] + (
        [f"  {job_line(r)}" for r in snap["parked"]] or ["  none"])
    return "\n".join(out)


def drain_progress(running: list[dict[str, Any]], now: datetime) -> str:
    """One line: how many tracked jobs still run here, and the longest ones."""
    if not running:
        return "drained: no tracked job runs on this host"
    timed = [r for r in running if isinstance(r["started_at"], datetime)]  # not a hand-written row's garbage
    longest = sorted(timed, key=lambda r: r["started_at"])[:3]
    detail = ", ".join(f"{r['job_class']} {r['identifier']} ({_seconds((now - r['started_at']).total_seconds())})"
                       for r in longest)
    return f"waiting: {len(running)} tracked job(s) running on this host: {detail}"
