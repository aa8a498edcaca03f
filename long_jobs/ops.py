"""The operators' verbs as library functions: drain, wait, restart, status, list, show, resend,
retry-now, reset-stalled, delete.

They return plain values; ``long_jobs.cli`` prints them through ``report``, and the web page
calls the same functions.
Sentinel files are per host; states, locks and heartbeats are in the
database, shared by every host.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from dj_daemon import daemonize, journal, processes, schedule, sentinels
from dj_daemon.config import Config
from dj_daemon.errors import DJError
from dj_daemon.job import utcnow
from dj_daemon.nudge import Nudger
from dj_daemon.store import Store
from dj_daemon.tracking import PARKED, Gate, State

from .tracked import HistoryEntry, TrackedDetail, TrackedJob, TrackedPage, history_of

EXIT_NORMAL, EXIT_DRAINING, EXIT_TROUBLE = 0, 3, 4
#: Rows on a page unless asked otherwise, and the most one page may ask for.
PAGE, MAX_PAGE = 50, 1000


@dataclass(frozen=True)
class Drained:
    """What ``drain`` did on ``host``: the sentinel files it wrote, and those already there."""

    host: str
    written: list[str]
    present: list[str]


def drain(config: Config, hold_only: bool = False) -> Drained:
    """Write both sentinel files on this host, or with ``hold_only`` only ``hold-submissions.txt``
    (submissions are held, deferrable jobs go on running)."""
    names = [sentinels.FILES[Gate.HOLD]] if hold_only else list(sentinels.FILES.values())
    written = sentinels.touch(config.sentinel_dir, config.hostname, names)
    return Drained(config.hostname, written, [name for name in names if name not in written])


def running_here(store: Store, config: Config, gates: tuple[Gate, ...] | None = None) -> list[dict[str, Any]]:
    """Tracked jobs running on this host now (of those ``gates`` only, when given)."""
    running = store.tracked(state=State.RUNNING.value, host=config.hostname, limit=None)
    return running if gates is None else [row for row in running if row["gate"] in {g.value for g in gates}]


def wait_drained(store: Store, config: Config, timeout: float | None,
                 progress: Callable[[list[dict[str, Any]]], None], poll: float = 1.0,
                 gates: tuple[Gate, ...] | None = None) -> bool:
    """Wait until no tracked job (of ``gates``, when given) runs on this host; False when
    ``timeout`` passes first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        running = running_here(store, config, gates)
        progress(running)
        if not running:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(poll)


@dataclass
class RestartResult:
    removed: list[str] = field(default_factory=list)
    reenqueued: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    moved: int = 0  #: re-enqueued at the back of their strand, their place lost (see ``store.states``)


def restart(store: Store, config: Config, hosts: tuple[str, ...] = ()) -> RestartResult:
    """Re-enqueue every parked job at its place, one transaction per job, then remove the sentinels.

    Deferred jobs are re-enqueued whichever host parked them; rejected
    submissions those of this host, and of ``hosts`` (moved to this host).
    The jobs come back held (locked by this restart), so that no worker parks
    them again while the sentinels are still there, and each holds its
    strand: no newer job of it starts first. The sentinels go next, then jobs
    parked meanwhile come back too, and last the hold is released. A crash
    midway leaves the sentinels (still draining) or held jobs: run restart again.
    """
    hold = f"long_jobs restart@{config.hostname}"
    result = RestartResult()
    _reenqueue_parked(store, config, {config.hostname, *hosts}, hold, result)
    result.removed = sentinels.remove(config.sentinel_dir)
    _reenqueue_parked(store, config, {config.hostname, *hosts}, hold, result)
    store.release_hold(hold)
    return result


def _reenqueue_parked(store: Store, config: Config, from_hosts: set[str], hold: str, result: RestartResult) -> None:
    parked = [row for state in PARKED for row in store.tracked(state=state.value, limit=None)
              if state is State.DEFERRED or row["hostname"] in from_hosts]
    for row in sorted(parked, key=lambda r: r["id"]):
        done = store.reenqueue_tracked(row["id"], (State(row["state"]),), config.hostname, hold)
        if done is None:
            result.skipped += 1  # another restart took it first
            continue
        result.moved += not done.kept_place
        result.reenqueued.append({**row, "delayed_job_id": done.job_id})


def stalled(rows: list[dict[str, Any]], config: Config, now: datetime, dead: dict[str, str]) -> list[dict[str, Any]]:
    """``running`` rows whose worker is gone: no lock, a worker ``dead`` (see ``judge_workers``),
    or no heartbeat row at all and a lock older than ``max_run_time``."""
    lock_limit = now - timedelta(seconds=config.max_run_time)
    found = []
    for row in rows:
        if row["state"] != State.RUNNING.value:
            continue
        if row["locked_by"] is None:
            why = "its work-queue row is no longer locked"
        elif row["locked_by"] in dead:
            why = f"worker {row['locked_by']} is dead: {dead[row['locked_by']]}"
        elif row["last_seen"] is None and _time(row["locked_at"], datetime.min) < lock_limit:
            why = f"worker {row['locked_by']} has no heartbeat and its lock is older than max_run_time"
        else:
            continue
        found.append({**row, "reason": why})
    return found


def judge_workers(workers: list[dict[str, Any]], config: Config, now: datetime) -> list[dict[str, Any]]:
    """Each heartbeat row with ``alive`` and, when not, ``dead`` (why). This host's workers are
    judged at once, whatever their heartbeat says: by whether a process holds their journal,
    or where that cannot tell (an older version's, or one this user may not read), by their pid
    (a zombie is dead) (see ``journal.gone``); heartbeats are the evidence only for other hosts."""
    beat_limit = now - timedelta(seconds=config.heartbeat_timeout)
    folder = journal.folder_of(config.journal_dir, config.sentinel_dir)
    judged = []
    for w in workers:
        if w["hostname"] == config.hostname:
            running = isinstance(w["pid"], int) and processes.alive(w["pid"])
            holding = journal.held(folder, w["name"])
            is_alive = running if holding is None else holding
            why = (f"pid {w['pid']} is another process now: none holds the worker's journal" if running
                   else f"pid {w['pid']} is not running on this host")
        else:
            last_seen = _time(w["last_seen"])
            is_alive = last_seen is not None and last_seen >= beat_limit
            why = f"silent since {last_seen:%Y-%m-%d %H:%M:%S} UTC" if last_seen else "no readable heartbeat"
        judged.append({**w, "age_s": _age(w["last_seen"], now), "alive": is_alive,
                       "dead": None if is_alive else why})
    return judged


def dead_workers(judged: list[dict[str, Any]]) -> dict[str, str]:
    """Name to why, of the workers ``judge_workers`` found dead."""
    return {w["name"]: w["dead"] for w in judged if w["dead"]}


def reset_stalled(store: Store, config: Config) -> list[dict[str, Any]]:
    """Move every stalled job to ``error`` with the reason; returns those moved."""
    moved, now = [], utcnow()
    dead = dead_workers(judge_workers(store.workers(), config, now))
    for row in stalled(store.tracked(state=State.RUNNING.value, limit=None), config, now, dead):
        if store.reset_stalled(row["id"], f"stalled: {row['reason']}"):
            moved.append(row)
    return moved


@dataclass(frozen=True)
class Resent:
    """A tracked job sent again: its queue id, and whether it was ``re-enqueued`` (it was in error)
    or made ``due now`` (it was waiting, a retrying job say)."""

    state_id: int
    job_id: int
    action: str


def resend(store: Store, config: Config, state_id: int) -> Resent:
    """Send a tracked job again: one in ``error`` is re-enqueued (at the back of its strand); one
    waiting in the queue (a retrying job) runs now, as ``retry_now``. Others are refused."""
    row = store.get_tracked(state_id)
    if row["state"] == State.ENQUEUED.value:
        return Resent(state_id, retry_now(store, config, state_id), "due now")
    done = store.reenqueue_tracked(state_id, (State.ERROR,), config.hostname)
    if done is None:
        raise DJError(f"tracked job {state_id} is {row['state']}; only jobs in error or waiting are resent")
    Nudger(config)()
    return Resent(state_id, done.job_id, "re-enqueued")


def retry_now(store: Store, config: Config, state_id: int) -> int:
    """Make a waiting tracked job (a retrying one, say) due now, its attempts kept, and nudge this
    host's daemon so an idle worker takes it at once; returns its queue id."""
    job_id = store.retry_tracked_now(state_id, config.hostname)
    if job_id is None:
        state = store.get_tracked(state_id)["state"]
        if state == State.ENQUEUED.value:  # its queue row is locked: a worker took it, or a restart holds it
            raise DJError(f"tracked job {state_id} is being taken or held (by a restart under way); "
                          f"see long_jobs show {state_id}")
        hint = "; resend it" if state == State.ERROR.value else ""
        raise DJError(f"tracked job {state_id} is {state}, not waiting in the queue{hint}")
    Nudger(config)()
    return job_id


def list_tracked(store: Store, config: Config, *, state: str | None = None, identifier: str | None = None,
                 job_class: str | None = None, host: str | None = None, before: int | None = None,
                 limit: int = PAGE) -> TrackedPage:
    """A page of tracked jobs, newest first, below id ``before``; each with its queue row's attempts
    and last error. ``next_before`` of the page asks for the next one."""
    if not 1 <= limit <= MAX_PAGE:
        raise DJError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    rows = store.tracked_page(state=state, identifier=identifier, job_class=job_class, host=host, before=before,
                              limit=limit + 1)
    jobs = [TrackedJob.from_row(row, config.max_attempts) for row in rows[:limit]]
    return TrackedPage(jobs, jobs[-1].id if len(rows) > limit else None, limit)


def show(store: Store, config: Config, state_id: int) -> TrackedDetail:
    """One tracked job: its row, its queue row, the payload, and its history (see ``history_of``)."""
    row = store.tracked_detail(state_id)
    job = TrackedJob.from_row(row, config.max_attempts)
    kept = [HistoryEntry.from_row(entry) for entry in row["history"]]
    return TrackedDetail(job, row["payload"], history_of(job, kept))


def delete(store: Store, state_id: int) -> None:
    store.delete_tracked(state_id)


def systemd_state() -> dict[str, Any] | None:
    """systemd's view of the unit (active, and its MainPID alive), where systemd is PID 1,
    ``systemctl`` is installed and the unit exists; None elsewhere (containers, init.d hosts)."""
    if not (shutil.which("systemctl") and os.path.isdir("/run/systemd/system")):
        return None
    result = subprocess.run(["systemctl", "show", "-p", "LoadState", "-p", "ActiveState", "-p", "MainPID",
                             "delayed_job"], capture_output=True, text=True)
    shown = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    if shown.get("LoadState", "not-found") == "not-found":
        return None
    state, pid = shown.get("ActiveState", "unknown"), int(shown.get("MainPID", "0") or 0)
    running = state in ("active", "reloading") and pid > 0 and processes.alive(pid)
    return {"manager": "systemd", "state": f"{state} (MainPID {pid})", "running": running}


def daemon_state(config: Config, workers_here: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the daemon runs on this host, from what this host knows at once: systemd where it
    runs, else the pidfile (init.d mode), else (a foreground ``delayed_job run``, which writes
    none) whether any of this host's registered worker processes is alive."""
    by_systemd = systemd_state()
    if by_systemd is not None:
        return by_systemd
    code, line = daemonize.status(config.pidfile)
    if code != daemonize.LSB_STOPPED:
        return {"manager": "pidfile", "state": line, "running": code == daemonize.LSB_RUNNING}
    live = sum(1 for w in workers_here if w["alive"])
    if live:
        return {"manager": "worker pids", "state": f"{live} worker process(es) alive on this host", "running": True}
    return {"manager": "pidfile", "state": line + " (no pidfile, no live worker process on this host)",
            "running": False}


def status(store: Store, config: Config) -> dict[str, Any]:
    """Everything ``long_jobs status`` shows, as plain data (the ``--json`` form)."""
    now = utcnow()
    running = store.tracked(state=State.RUNNING.value, limit=None)
    parked = [row for state in PARKED for row in store.tracked(state=state.value, limit=None)]
    workers = judge_workers(store.workers(), config, now)
    gone = stalled(running, config, now, dead_workers(workers))
    gone_ids = {r["id"] for r in gone}
    found = sentinels.present(config.sentinel_dir)
    return {
        "host": config.hostname,
        "database": config.safe_url,
        "draining": {name: s.since and s.since.isoformat(timespec="seconds") for name, s in found.items()},
        "sentinel_dir": config.sentinel_dir,
        "sentinel_dir_exists": os.path.isdir(config.sentinel_dir),  # not before the daemon's first start
        "odd_sentinels": {name: s.kind for name, s in found.items() if not s.regular},
        "daemon": daemon_state(config, [w for w in workers if w["hostname"] == config.hostname]),
        "workers": workers,
        "states": store.tracked_counts(),
        "queue": (queue := store.counts()),
        "queue_at_least": sorted(queue.at_least),  # these reached the cap: lower bounds
        "running": [{**r, "elapsed_s": _age(r["started_at"], now)} for r in running if r["id"] not in gone_ids],
        "stalled": gone,
        "parked": sorted(parked, key=lambda r: r["id"]),
        "schedule": recurring(store, config, now),
    }


def recurring(store: Store, config: Config, now: datetime) -> dict[str, Any]:
    """The recurring jobs with their last and next runs; a schedule that cannot be read (a module of
    ``schedule_modules`` that does not import) is said in the section, not fatal to the status."""
    try:
        lines = schedule.listing(config, store, now)
    except DJError as exc:
        return {"entries": [], "error": str(exc).splitlines()[0]}
    return {"entries": [{"name": line.name, "when": line.when, "target": line.target, "missed": line.missed,
                         "last_run": line.last.occurrence if line.last else None,
                         "last_job_id": line.last.job_id if line.last else None,
                         "last_host": line.last.hostname if line.last else None, "next_run": line.next}
                        for line in lines], "error": None}


def _age(since: Any, now: datetime) -> float | None:
    since = _time(since)
    return None if since is None else round((now - since).total_seconds(), 1)


def _time(value: Any, unreadable: datetime | None = None) -> datetime | None:
    """A stored time, or ``unreadable`` for what a hand-written row may hold instead (see
    ``store.common.LenientTime``): a status is shown whatever the rows say."""
    return value if isinstance(value, datetime) else unreadable


def exit_code(snapshot: dict[str, Any]) -> int:
    """0 normal, 3 draining, 4 trouble: stalled jobs, a daemon that should run and does not, or
    dead workers still registered (nobody has released what they held)."""
    if snapshot["stalled"] or not snapshot["daemon"]["running"] or any(w["dead"] for w in snapshot["workers"]):
        return EXIT_TROUBLE
    return EXIT_DRAINING if snapshot["draining"] else EXIT_NORMAL

