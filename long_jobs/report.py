"""Rendering for ``long_jobs``: the status table, its JSON form, drain progress, job lists, one job."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from .tracked import TrackedDetail, TrackedJob, TrackedPage

STATE_ORDER = ("enqueued", "running", "completed", "error", "deferred", "rejected_shutting_down")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _when(value: Any) -> str:
    """A time as ``2026-12-07 03:22:55``; a stored value that is no time, as it is."""
    if value is None:
        return "-"
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else str(value)


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


#: The last error as ``long_jobs list`` cuts it (``long_jobs show`` has it whole).
ERROR_WIDTH = 80
PAGE_HEADER = (f"{'id':>7} {'state':23} {'class':40} {'identifier':20} {'host':20} {'attempts':8} "
               f"{'updated (UTC)':19} last error")


def _first_line(text: str | None, width: int) -> str:
    lines = (text or "").strip().splitlines()
    return (lines[0][:width - 1] + "…" if len(lines[0]) > width else lines[0]) if lines else "-"


def _attempts(job: TrackedJob) -> str:
    """Failed runs of its queue row, of the most it may have; ``-`` without one."""
    return "-" if job.attempts is None else f"{job.attempts}/{job.max_attempts}"


def page_line(job: TrackedJob) -> str:
    """One job of ``long_jobs list``: a retrying job's state says so; its attempts and error follow."""
    state = "retrying" if job.retrying else job.state
    return (f"{job.id:>7} {state:23} {job.job_class[:40]:40} {job.identifier[:20]:20} "
            f"{(job.hostname or '-')[:20]:20} {_attempts(job):8} {_when(job.updated_at):19} "
            f"{_first_line(job.error, ERROR_WIDTH)}")


def page_text(page: TrackedPage, next_command: str) -> str:
    """A page of ``long_jobs list``, and the command for the next one when there is one."""
    lines = [PAGE_HEADER] + [page_line(job) for job in page.jobs]
    if not page.jobs:
        lines.append("  no tracked job")
    if page.next_before is not None:
        lines.append(f"more: {next_command} --before {page.next_before}")
    return "\n".join(lines)


def detail_text(detail: TrackedDetail) -> str:
    """``long_jobs show``: the tracked row, its queue row, the payload, the history (times UTC)."""
    job = detail.job
    queue = ("none (it is not in the work queue)" if job.attempts is None else
             f"job {job.delayed_job_id}, attempts {job.attempts} of {job.max_attempts}, run_at {_when(job.run_at)}, "
             f"locked by {job.locked_by or '-'}{' since ' + _when(job.locked_at) if job.locked_by else ''}, "
             f"failed at {_when(job.failed_at)}")
    fields = [("state", job.shown_state), ("class", job.job_class), ("identifier", job.identifier),
              ("gate", job.gate), ("host", job.hostname or "-"), ("queue", job.queue or "-"),
              ("priority", str(job.priority)), ("created", _when(job.created_at)), ("started", _when(job.started_at)),
              ("finished", _when(job.finished_at)), ("updated", _when(job.updated_at)), ("queue row", queue),
              ("payload", detail.payload), ("last error", (job.error or "-").rstrip())]
    out = [f"tracked job {job.id} (times UTC)"] + [f"{name:>10}: {value}" for name, value in fields]
    out += ["history:"] + [f"  {_when(entry.at):19}  {entry.state:23} {(entry.hostname or '-'):20} {entry.note or ''}"
                           .rstrip() for entry in detail.history]
    return "\n".join(out)


def status_text(snap: dict[str, Any]) -> str:
    """The human-readable status: sections separated by blank lines."""
    out = [f"host {snap['host']}   database {snap['database']}"]
    if snap["draining"]:
        out.append("DRAINING: " + ", ".join(_sentinel(name, since, snap["odd_sentinels"].get(name))
                                            for name, since in snap["draining"].items()))
    elif not snap.get("sentinel_dir_exists", True):
        out.append(f"draining: no (no sentinel folder {snap['sentinel_dir']} yet: the daemon makes it at its start)")
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
    return "\n".join(out + schedule_text(snap.get("schedule")))


def schedule_text(section: dict[str, Any] | None) -> list[str]:
    """The recurring jobs' lines of the status (times UTC), or why they cannot be read."""
    if section is None:
        return []
    if section["error"]:
        return ["", f"recurring jobs: cannot read the schedule: {section['error']}"]
    return ["", "recurring jobs (UTC):"] + (
        [f"  {e['name'][:24]:24} {e['when'][:32]:32} last {_when(e['last_run']):19} "
         f"{'on ' + e['last_host'] if e['last_host'] else '':14} next {_when(e['next_run'])}"
         for e in section["entries"]] or ["  none"])


def drain_progress(running: list[dict[str, Any]], now: datetime) -> str:
    """One line: how many tracked jobs still run here, and the longest ones."""
    if not running:
        return "drained: no tracked job runs on this host"
    timed = [r for r in running if isinstance(r["started_at"], datetime)]  # not a hand-written row's garbage
    longest = sorted(timed, key=lambda r: r["started_at"])[:3]
    detail = ", ".join(f"{r['job_class']} {r['identifier']} ({_seconds((now - r['started_at']).total_seconds())})"
                       for r in longest)
    return f"waiting: {len(running)} tracked job(s) running on this host: {detail}"
