"""Rendering for ``long_jobs``: the status table, its JSON form, drain progress, job lists, one job."""
from __future__ import annotations

import functools
import json
import shutil
from datetime import datetime, timezone, tzinfo
from typing import Any, TextIO

from dj_daemon import display

from .tracked import TrackedDetail, TrackedJob, TrackedPage

STATE_ORDER = ("enqueued", "running", "completed", "error", "deferred", "rejected_shutting_down", "cancelled")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _sentinel(name: str, since: str | None, odd_kind: str | None, zone: tzinfo) -> str:
    """A sentinel as present; one that is not a regular file is flagged: drain never makes one."""
    if odd_kind is None:
        return f"{name} since {display.when(_parsed(since), zone)}"
    return f"{name} (a {odd_kind}, not a file drain wrote: it still drains; `long_jobs restart` removes it)"


def _parsed(stamp: str | None) -> datetime | str | None:
    """An ISO time of the snapshot (as its JSON form carries it) as a time; other text as it is."""
    try:
        return datetime.fromisoformat(stamp) if stamp else stamp
    except ValueError:
        return stamp


def job_line(row: dict[str, Any], zone: tzinfo = timezone.utc) -> str:
    return (f"{row['id']:>7} {row['state']:23} {row['job_class'][:40]:40} {row['identifier'][:20]:20} "
            f"{(row['hostname'] or '-')[:20]:20} {display.when(row['updated_at'], zone)}")


#: The last error as ``long_jobs list`` cuts it (``long_jobs show`` has it whole).
ERROR_WIDTH = 80


def page_header(zone: tzinfo) -> str:
    return (f"{'id':>7} {'state':23} {'class':40} {'identifier':20} {'host':20} {'attempts':8} "
            f"{'updated':{display.width(zone)}} last error")


def _first_line(text: str | None, width: int) -> str:
    """The first line of ``text``, cut to ``width`` (ending ``...`` when cut); ``-`` for none."""
    lines = (text or "").strip().splitlines()
    if not lines:
        return "-"
    return lines[0] if len(lines[0]) <= width else lines[0][:width - 3] + "..."


def _attempts(job: TrackedJob) -> str:
    """Failed runs of its queue row, of the most it may have; ``-`` without one."""
    return "-" if job.attempts is None else f"{job.attempts}/{job.max_attempts}"


def page_line(job: TrackedJob, zone: tzinfo = timezone.utc) -> str:
    """One job of ``long_jobs list``: a retrying job's state says so; its attempts and error follow."""
    state = "retrying" if job.retrying else job.state
    return (f"{job.id:>7} {state:23} {job.job_class[:40]:40} {job.identifier[:20]:20} "
            f"{(job.hostname or '-')[:20]:20} {_attempts(job):8} "
            f"{display.when(job.updated_at, zone):{display.width(zone)}} {_first_line(job.error, ERROR_WIDTH)}")


def page_text(page: TrackedPage, next_command: str, zone: tzinfo = timezone.utc) -> str:
    """A page of ``long_jobs list``, and the command for the next one when there is one."""
    lines = [page_header(zone)] + [page_line(job, zone) for job in page.jobs]
    if not page.jobs:
        lines.append("  no tracked job")
    if page.next_before is not None:
        lines.append(f"more: {next_command} --before {page.next_before}")
    return "\n".join(lines)


def detail_text(detail: TrackedDetail, zone: tzinfo = timezone.utc) -> str:
    """``long_jobs show``: the tracked row, its queue row, the payload, the history (times marked)."""
    job, _when = detail.job, functools.partial(display.when, shown_in=zone)
    queue = ("none (it is not in the work queue)" if job.attempts is None else
             f"job {job.delayed_job_id}, attempts {job.attempts} of {job.max_attempts}, run_at {_when(job.run_at)}, "
             f"locked by {job.locked_by or '-'}{' since ' + _when(job.locked_at) if job.locked_by else ''}, "
             f"failed at {_when(job.failed_at)}")
    fields = [("state", job.shown_state), ("class", job.job_class), ("identifier", job.identifier),
              ("gate", job.gate), ("host", job.hostname or "-"), ("queue", job.queue or "-"),
              ("priority", str(job.priority)), ("created", _when(job.created_at)), ("started", _when(job.started_at)),
              ("finished", _when(job.finished_at)), ("updated", _when(job.updated_at)), ("queue row", queue),
              ("payload", detail.payload), ("last error", (job.error or "-").rstrip())]
    out = [f"tracked job {job.id}"] + [f"{name:>10}: {value}" for name, value in fields]
    out += ["history:"] + [f"  {_when(entry.at):{display.width(zone)}}  {entry.state:23} "
                           f"{(entry.hostname or '-'):20} {entry.note or ''}".rstrip() for entry in detail.history]
    return "\n".join(out)


def _count(snap: dict[str, Any], name: str) -> str:
    """A queue count of the status, ``10,000+`` when it reached the cap (a lower bound)."""
    return f"{snap['queue'][name]:,}{'+' if name in snap.get('queue_at_least', ()) else ''}"


def status_text(snap: dict[str, Any], zone: tzinfo = timezone.utc) -> str:
    """The human-readable status: sections separated by blank lines."""
    out = [f"host {snap['host']}   database {snap['database']}"]
    if snap["draining"]:
        out.append("DRAINING: " + ", ".join(_sentinel(name, since, snap["odd_sentinels"].get(name), zone)
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
    out += ["", "work queue: " + ", ".join(f"{_count(snap, name)} {name}" for name in ("waiting", "running", "failed")),
            "tracked jobs: " + ", ".join(f"{snap['states'].get(s, 0)} {s}" for s in STATE_ORDER)]
    out += ["", "running:"] + ([f"  {r['id']:>7} {r['job_class']} {r['identifier']} on {r['hostname']} "
                                f"for {_seconds(r['elapsed_s'])} ({r['locked_by'] or 'no lock'})"
                                for r in snap["running"]] or ["  none"])
    out += ["", "stalled (running, worker gone):"] + (
        [f"  {r['id']:>7} {r['job_class']} {r['identifier']}: {r['reason']}" for r in snap["stalled"]] or ["  none"])
    out += ["", "parked, waiting for `long_jobs restart`:"] + (
        [f"  {job_line(r, zone)}" for r in snap["parked"]] or ["  none"])
    return "\n".join(out + schedule_text(snap.get("schedule"), zone))


def schedule_text(section: dict[str, Any] | None, zone: tzinfo = timezone.utc) -> list[str]:
    """The recurring jobs' lines of the status, or why they cannot be read."""
    if section is None:
        return []
    if section["error"]:
        return ["", f"recurring jobs: cannot read the schedule: {section['error']}"]
    return ["", "recurring jobs:"] + (
        [f"  {e['name'][:24]:24} {e['when'][:32]:32} last {display.when(e['last_run'], zone):{display.width(zone)}} "
         f"{'on ' + e['last_host'] if e['last_host'] else '':14} next {display.when(e['next_run'], zone)}"
         for e in section["entries"]] or ["  none"])


def drain_progress(running: list[dict[str, Any]], now: datetime) -> str:
    """One line: how many tracked jobs still run here, and the longest ones."""
    if not running:
        return "drained: no tracked job runs on this host"
    timed = [r for r in running if isinstance(r["started_at"], datetime)]  # not a hand-written row's garbage
    longest = sorted(timed, key=lambda r: r["started_at"])[:3]
    detail = ", ".join(f"{r['job_class']} {r['identifier']} ({_seconds((now - r['started_at']).total_seconds())})"
                       for r in longest)
    return f"waiting: {display.count(len(running), 'tracked job')} running on this host: {detail}"


class LiveLine:
    """``drain --wait``'s progress: on a terminal one line rewritten in place (``\\r``, cut to the
    terminal's width so that it never wraps), ended with a newline; elsewhere (a log, a pipe) a
    line each time what runs changes, not each time the durations tick."""

    def __init__(self, stream: TextIO, terminal: bool) -> None:
        self.stream, self.terminal = stream, terminal
        self._shown: tuple[Any, ...] | None = None  # the ids running as last written (not a terminal)
        self._open = False  # a terminal's line is written and not ended yet

    def show(self, running: list[dict[str, Any]], now: datetime) -> None:
        line = drain_progress(running, now)
        if self.terminal:
            columns = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + line[:columns] + "\x1b[K")  # erase what a longer line left
            self._open = True
        else:
            running_now = tuple(sorted(r["id"] for r in running))
            if running_now == self._shown:
                return
            self._shown = running_now
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        """Close a terminal's line, so that what follows starts on its own."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
