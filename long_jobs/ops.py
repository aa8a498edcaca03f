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

from dj_daemon import daemonize, sentinels
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
    removed: list[str]
    reenqueued: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0


def restart(store: Store, config: Config, hosts: tuple[str, ...] = ()) -> RestartResult:
    """Remove the sentinels, then re-enqueue every parked job, one transaction per job.

    Deferred jobs are re-enqueued whichever host parked them; rejected
    submissions those of this host, and of ``hosts`` (moved to this host).
    """
    result = RestartResult(sentinels.remove(config.sentinel_dir))
    from_hosts = {config.hostname, *hosts}
    parked = [row for state in PARKED for row in store.tracked(state=state.value, limit=None)
              if state is State.DEFERRED or row["hostname"] in from_hosts]
    for row in sorted(parked, key=lambda r: r["id"]):
        job_id = store.reenqueue_tracked(row["id"], (State(row["state"]),), config.hostname)
        if job_id is None:
            result.skipped += 1  # another restart took it first
        else:
            result.reenqueued.append({**row, "delayed_job_id": job_id})
    return result


def stalled(rows: list[dict[str, Any]], config: Config, now: datetime) -> list[dict[str, Any]]:
    """``running`` rows whose worker is gone: no lock, a silent heartbeat, or no heartbeat and a stale lock."""
    beat_limit = now - timedelta(seconds=config.heartbeat_timeout)
    lock_limit = now - timedelta(seconds=config.max_run_time)
    found = []
    for row in rows:
        if row["state"] != State.RUNNING.value:
            continue
        if row["locked_by"] is None:
            why = "its work-queue row is no longer locked"
        elif row["last_seen"] is not None and row["last_seen"] < beat_limit:
            why = f"worker {row['locked_by']} silent since {row['last_seen']:%Y-%m-%d %H:%M:%S} UTC"
        elif row["last_seen"] is None and row["locked_at"] < lock_limit:
            why = f"worker {row['locked_by']} has no heartbeat and its lock is older than max_run_time"
        else:
            continue
        found.append({**row, "reason": why})
    return found


def reset_stalled(store: Store, config: Config) -> list[dict[str, Any]]:
    """Move every stalled job to ``error`` with the reason; returns those moved."""
    moved = []
    for row in stalled(store.tracked(state=State.RUNNING.value, limit=None), config, utcnow()):
        if store.reset_stalled(row["id"], f"stalled: {row['reason']}"):
            moved.append(row)
    return moved


def resend(store: Store, config: Config, state_id: int) -> int:
    """Re-enqueue a job in ``error``; returns its new queue id."""
    row = store.get_tracked(state_id)
    job_id = store.reenqueue_tracked(state_id, (State.ERROR,), config.hostname)
    if job_id is None:
        raise DJError(f"tracked job {state_id} is {row['state']}, not error; only errored jobs are resent")
    return job_id


def delete(store: Store, state_id: int) -> None:
    store.delete_tracked(state_id)


def daemon_state(config: Config, live_workers_here: int) -> dict[str, Any]:
    """Whether the daemon runs on this host: systemd's view where systemd runs, else the pidfile,
    else (a foreground ``delayed_job run``) live heartbeats of this host's workers."""
    if shutil.which("systemctl") and os.path.isdir("/run/systemd/system"):
        result = subprocess.run(["systemctl", "is-active", "delayed_job"], capture_output=True, text=True)
        state = result.stdout.strip() or "unknown"
        return {"manager": "systemd", "state": state, "running": state in ("active", "reloading")}
    code, line = daemonize.status(config.pidfile)
    if code != daemonize.LSB_RUNNING and live_workers_here:
        return {"manager": "heartbeats", "state": f"{live_workers_here} live worker(s) on this host",
                "running": True}
    return {"manager": "pidfile", "state": line, "running": code == daemonize.LSB_RUNNING}


def status(store: Store, config: Config) -> dict[str, Any]:
    """Everything ``long_jobs status`` shows, as plain data (the ``--json`` form)."""
    now = utcnow()
    running = store.tracked(state=State.RUNNING.value, limit=None)
    parked = [row for state in PARKED for row in store.tracked(state=state.value, limit=None)]
    beat_limit = now - timedelta(seconds=config.heartbeat_timeout)
    workers = [{**w, "age_s": _age(w["last_seen"], now), "alive": w["last_seen"] >= beat_limit}
               for w in store.workers()]
    live_here = sum(1 for w in workers if w["alive"] and w["hostname"] == config.hostname)
    found = sentinels.present(config.sentinel_dir)
    return {
        "host": config.hostname,
        "database": config.safe_url,
        "draining": {name: s.since and s.since.isoformat(timespec="seconds") for name, s in found.items()},
        "odd_sentinels": {name: s.kind for name, s in found.items() if not s.regular},
        "daemon": daemon_state(config, live_here),
        "workers": workers,
        "states": store.tracked_counts(),
        "queue": store.counts(),
        "running": [{**r, "elapsed_s": _age(r["started_at"], now)} for r in running],
        "stalled": stalled(running, config, now),
        "parked": sorted(parked, key=lambda r: r["id"]),
    }


def _age(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else round((now - since).total_seconds(), 1)


def exit_code(snapshot: dict[str, Any]) -> int:
    """0 normal, 3 draining, 4 trouble (stalled jobs, or a daemon that should run and does not)."""
    if snapshot["stalled"] or not snapshot["daemon"]["running"]:
        return EXIT_TROUBLE
    return EXIT_DRAINING if snapshot["draining"] else EXIT_NORMAL

