"""The operators' verbs as library functions: drain, wait, restart, status, resend, reset-stalled, delete.

They return plain values; ``long_jobs.cli`` prints them through ``report``.
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

from dj_daemon import daemonize, processes, sentinels
from dj_daemon.config import Config
from dj_daemon.errors import DJError
from dj_daemon.job import utcnow
from dj_daemon.store import Store
from dj_daemon.tracking import PARKED, State

EXIT_NORMAL, EXIT_DRAINING, EXIT_TROUBLE = 0, 3, 4


def drain(config: Config) -> list[str]:
    """Write both sentinel files on this host; returns those newly written."""
    return sentinels.touch(config.sentinel_dir, config.hostname)


def running_here(store: Store, config: Config) -> list[dict[str, Any]]:
    """Tracked jobs running on this host now."""
    return store.tracked(state=State.RUNNING.value, host=config.hostname)


def wait_drained(store: Store, config: Config, timeout: float | None,
                 progress: Callable[[list[dict[str, Any]]], None], poll: float = 1.0) -> bool:
    """Wait until no tracked job runs on this host; False when ``timeout`` passes first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        running = running_here(store, config)
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
    judged by their pid at once (a zombie is dead), whatever their heartbeat says; heartbeats
    are the evidence only for other hosts."""
    beat_limit = now - timedelta(seconds=config.heartbeat_timeout)
    judged = []
    for w in workers:
        if w["hostname"] == config.hostname:
            is_alive = isinstance(w["pid"], int) and processes.alive(w["pid"])
            why = f"pid {w['pid']} is not running on this host"
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


def resend(store: Store, config: Config, state_id: int) -> int:
    """Re-enqueue a job in ``error``; returns its new queue id (at the back of its strand)."""
    row = store.get_tracked(state_id)
    done = store.reenqueue_tracked(state_id, (State.ERROR,), config.hostname)
    if done is None:
        raise DJError(f"tracked job {state_id} is {row['state']}, not error; only errored jobs are resent")
    return done.job_id


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
        "odd_sentinels": {name: s.kind for name, s in found.items() if not s.regular},
        "daemon": daemon_state(config, [w for w in workers if w["hostname"] == config.hostname]),
        "workers": workers,
        "states": store.tracked_counts(),
        "queue": store.counts(),
        "running": [{**r, "elapsed_s": _age(r["started_at"], now)} for r in running if r["id"] not in gone_ids],
        "stalled": gone,
        "parked": sorted(parked, key=lambda r: r["id"]),
    }


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

