"""The supervisor's database duties: freeing dead workers' jobs, heartbeats, polls, queue readings.

Every duty goes through ``guarded``: a database error is logged once per
outage and yields None, and the duty is tried again on a later turn, so an
outage never stops the supervisor (releases wait in ``pending`` meanwhile).
"""
from __future__ import annotations

import logging
import time
from typing import Callable, NamedTuple

from . import journal
from .config import Config
from .errors import DatabaseError
from .metrics import Metrics
from .processes import alive
from .sentinels import present
from .store import Store, open_store
from .worker import filters_from

log = logging.getLogger("dj_daemon.supervisor")


class Release(NamedTuple):
    """A worker that ended, to be settled: its name, why it ended, what its journal says."""

    name: str
    error: str
    completed: set[int] | None


class Upkeep:
    """One store for the supervisor, and what it does with it."""

    def __init__(self, config: Config, metrics: Metrics, journal_dir: str) -> None:
        self.config = config
        self.metrics = metrics
        self.journal_dir = journal_dir
        self.store: Store = open_store(config)
        self.error = ""
        self.measuring_fails = False
        self.queued: int | None = None
        self.pending: list[Release] = []
        self.orphans_checked = False

    def guarded(self, operation: Callable[[Store], object]) -> object | None:
        """Run a store operation; a database error is logged once per outage and yields None."""
        try:
            result = operation(self.store)
        except DatabaseError as exc:
            self.metrics.database_error("supervisor")
            if not self.error:
                log.error("%s; retrying", exc)
            self.error = str(exc)
            return None
        if self.error:
            log.warning("database reachable again")
            self.error = ""
        return result

    def release(self, name: str, error: str) -> None:
        """Settle an ended worker's jobs as its journal tells (see ``Store.worker_gone``): finished
        ones are deleted, the one it was running gets an attempt counted, the rest are unlocked."""
        self.pending.append(Release(name, error, journal.read(self.journal_dir, name)))
        self.retry_releases()

    def retry_releases(self) -> None:
        """Release what is pending, in order; what the database refuses waits for the next turn.
        A journal goes only once its worker's rows are settled: until then it is what the next
        supervisor would read, were this one to die."""
        while self.pending:
            name, error, completed = self.pending[0]
            released = self.guarded(lambda store: store.worker_gone(name, error, completed))
            if released is None:
                return
            self.pending.pop(0)
            journal.remove(self.journal_dir, name)
            if released:
                log.warning("released %d job(s) of %s: %s", released, name, error)

    def release_orphans(self) -> None:
        """Free the jobs of this host's workers of an earlier run that are gone: those with a
        heartbeat row, those that left a journal, and any that holds a job without a row (a worker
        of an older version). Done at start, and on later turns until the database has answered."""
        host = self.config.hostname
        rows = self.guarded(lambda store: store.workers(host))
        lockers = self.guarded(lambda store: store.lockers(host))
        if rows is None or lockers is None:
            return
        names = {row["name"] for row in rows} | set(lockers) | set(journal.dead_workers(self.journal_dir, host, alive))
        for name in sorted(names):
            pid = journal.pid_of(name, host)
            if pid is not None and not alive(pid) and all(p.name != name for p in self.pending):
                self.release(name, f"worker {name} gone: found dead at daemon start")
        self.orphans_checked = True

    def heartbeat(self, current_jobs: dict[str, int | None]) -> None:
        """One write for all this host's workers; then free the jobs of silent workers elsewhere."""
        if not self.orphans_checked:
            self.release_orphans()
        self.retry_releases()
        self.guarded(lambda store: store.beat(current_jobs))
        timeout = self.config.heartbeat_timeout
        for name in self.guarded(lambda store: store.silent_workers(timeout)) or []:
            if name not in current_jobs:
                self.pending.append(Release(name, f"worker {name} lost: no heartbeat for {timeout:g}s", None))
        self.retry_releases()

    def measure_queue(self) -> float:
        """One grouped query for STATUS= and the metrics: jobs due and waiting, by queue. Returns
        the seconds it took (it scans the waiting rows: over a second at a million)."""
        started = time.monotonic()
        try:
            depths = self.guarded(lambda store: store.queue_depths())
            if isinstance(depths, dict):
                self.queued = sum(count for count, _ in depths.values())
                self.metrics.queues(depths, self.store.clock(), set(present(self.config.sentinel_dir)))
        except Exception as exc:  # a reading is not worth the supervisor: log the first of a run, count each
            self.metrics.supervisor_error("measure_queue")
            if not self.measuring_fails:
                log.error("cannot measure the queue: %s: %s", type(exc).__name__, exc)
            self.measuring_fails = True
        else:
            self.measuring_fails = False
        return time.monotonic() - started

    def has_work(self, queues: tuple[str, ...]) -> bool:
        """The idle poll: is a job ready for a pool serving ``queues`` (empty: all)?"""
        config = self.config.replace(queues=queues) if queues else self.config
        return bool(self.guarded(lambda store: store.has_ready(filters_from(config))))
