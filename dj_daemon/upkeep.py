"""The supervisor's database duties: freeing dead workers' jobs, heartbeats, polls, queue readings,
recurring jobs.

Every duty goes through ``guarded``: a database error is logged once per
outage and yields None, and the duty is tried again on a later turn, so an
outage never stops the supervisor (releases wait in ``pending`` meanwhile).

Nor does a database that hangs instead of failing (a frozen server, a
network black hole) stop the loop's signals, reaping and watchdog pings.
Every wait on the database is bounded by ``timeout`` (see ``open_store``),
an eighth of the watchdog's interval (``statement_timeout``), and a turn of
the loop starts no duty once it has spent ``timeout`` on the database, nor
for ``timeout`` after a failure. The worst turn while the database hangs:
just under ``timeout`` of answered statements, then one duty that fails
within three (a quick failure, then its one retry's connect and statement):
4 timeouts, half the watchdog's interval, so a ping is never late by more.
Under the unit's ``WatchdogSec=60``: 3.75 s a wait, 15 s a turn at worst.
The duties stay on the loop's thread rather than a thread of their own: a
worker forked while such a thread held a lock (the metrics' file lock, a
buffered stream's, the pool's) would wait on it forever.
"""
from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from typing import Callable, NamedTuple

from . import journal
from .config import Config
from .errors import DatabaseError, DJError
from .metrics import Metrics
from .minutes import Tally
from .schedule import Scheduler
from .sentinels import present
from .store import Depths, Store, open_store
from .worker import filters_from

log = logging.getLogger("dj_daemon.supervisor")
#: The longest any supervisor statement may take, and the shortest (a slower watchdog asks no less).
TIMEOUT_MAX = 10.0
TIMEOUT_MIN = 1.0
#: The worst turn of the loop, in timeouts (see the module docstring), and in watchdog intervals.
WORST_TURN = 4
TURN_SHARE = 0.5
#: Seconds between two prunings of completed tracked jobs (``prune_tracked``); the first is at start.
PRUNE_EVERY = 300.0


def statement_timeout(watchdog_interval: float | None) -> float:
    """Seconds the supervisor may wait on the database at once: its worst turn (``WORST_TURN``
    of them) must take at most half the interval between pings (systemd waits two intervals)."""
    if not watchdog_interval:
        return TIMEOUT_MAX
    timeout = min(TIMEOUT_MAX, watchdog_interval * TURN_SHARE / WORST_TURN)
    if timeout < TIMEOUT_MIN:
        log.warning("watchdog interval %gs is too short to bound a database stall; database waits are "
                    "bounded to %gs, WatchdogSec should be at least %gs", watchdog_interval, TIMEOUT_MIN,
                    2 * TIMEOUT_MIN * WORST_TURN / TURN_SHARE)
    return max(timeout, TIMEOUT_MIN)


class Release(NamedTuple):
    """A worker that ended, to be settled: its name, why it ended, and whether it was judged dead
    by what it left (its journal, pid or heartbeat) rather than seen to end by this supervisor.
    What its journal lists as finished is read as it is settled."""

    name: str
    error: str
    judged: bool = False


class Upkeep:
    """One store for the supervisor, and what it does with it."""

    def __init__(self, config: Config, metrics: Metrics, journal_dir: str,
                 watchdog_interval: float | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.journal_dir = journal_dir
        self.timeout = statement_timeout(watchdog_interval)
        self.store: Store = open_store(config, timeout=self.timeout)
        self.error = ""
        self._failing: set[str] = set()  # sheltered duties failing now (see ``_sheltered``)
        self.queued: int | None = None  # jobs due at the last reading, for the charts: a lower bound past the cap
        self.queued_text = "?"          # the same for STATUS=: "?" before the first, "10000+" past the cap
        self.pending: list[Release] = []  # ended workers whose rows are not settled yet, in order
        self.orphans_checked = False
        self.tally = Tally(config.hostname)  # jobs done and failed this minute, for the web page's charts
        self._spent = 0.0       # on the database, this turn of the loop
        self._resume_at = 0.0   # no duty before this (monotonic), after a failure
        self._prune_at = 0.0    # the next pruning round starts then (monotonic)
        self._pruning: tuple[int, int] | None = None  # a round under way: the id it goes on after, rows pruned
        self.scheduler = Scheduler(config)  # imports schedule_modules: a bad schedule stops the start here

    def new_turn(self) -> None:
        """A new turn of the loop: it may spend ``timeout`` on the database again."""
        self._spent = 0.0

    def guarded(self, operation: Callable[[Store], object]) -> object | None:
        """Run a store operation; a database error is logged once per outage and yields None.
        None too, without a try, while this turn has spent its time or after a failure."""
        started = time.monotonic()
        if self._spent >= self.timeout or started < self._resume_at:
            return None
        try:
            result = operation(self.store)
        except DatabaseError as exc:
            self._resume_at = time.monotonic() + self.timeout
            self.metrics.database_error("supervisor")
            if not self.error:
                log.error("%s; retrying", exc)
            self.error = str(exc)
            return None
        finally:
            self._spent += time.monotonic() - started
        if self.error:
            log.warning("database reachable again")
            self.error = ""
        return result

    def release(self, name: str, error: str, judged: bool = False) -> None:
        """Settle an ended worker's jobs as its journal tells (see ``Store.worker_gone``): finished
        ones are deleted, the one it was running gets an attempt counted, the rest are unlocked.
        ``judged``: found dead by what it left, not seen to end (see ``Release``)."""
        self.pending.append(Release(name, error, judged))
        self.retry_pending()

    def forget(self, name: str) -> None:
        """A new worker of this supervisor's bears ``name`` (its pid was a dead one's): it takes
        back at start what that one left (``Worker.register``), so nothing of that name is
        settled here any longer."""
        self.pending = [release for release in self.pending if release.name != name]

    def retry_pending(self) -> None:
        """Release what is pending, in order; what the database does not take waits for a later
        turn. A journal goes only once its worker's rows are settled: until then it is what the
        next supervisor would read, were this one to die."""
        while self.pending and self.guarded(self._release_first):
            self.pending.pop(0)

    def _release_first(self, store: Store) -> bool:
        """The first pending release; True once done (``guarded`` yields None if it was not).

        A worker of this host judged dead is settled holding its journal (``journal.claim``):
        no worker of that name can start meanwhile, and one that has started since, holding
        it, took back what the dead one left (``Worker.register``): nothing is settled then."""
        name, error, judged = self.pending[0]
        hold = None
        if judged and journal.pid_of(name, self.config.hostname) is not None:
            try:
                hold = journal.claim(self.journal_dir, name, patience=0.05)
            except OSError:
                pass  # no journal can be kept here: settled as its pid said
            else:
                if hold is None:
                    log.info("worker %s is not gone: a live process holds its journal", name)
                    return True
        try:
            released = store.worker_gone(name, error, journal.read(self.journal_dir, name))
            if released:
                log.warning("released %d job(s) of %s: %s", released, name, error)
            journal.remove(self.journal_dir, name)
        finally:
            if hold is not None:
                os.close(hold)
        return True

    def release_orphans(self) -> None:
        """Free the jobs of this host's workers of an earlier run that are gone: those with a
        heartbeat row, those that left a journal, and any that holds a job without a row (a worker
        of an older version). Done at start, and on later turns until the database has answered.
        A worker is gone when no process holds its journal, or where that cannot tell, when its
        pid is not running (see ``journal.gone``)."""
        host = self.config.hostname
        rows = self.guarded(lambda store: store.workers(host))
        lockers = self.guarded(lambda store: store.lockers(host))
        if rows is None or lockers is None:
            return
        names = {row["name"] for row in rows} | set(lockers) | set(journal.dead_workers(self.journal_dir, host))
        for name in sorted(names):
            if journal.gone(self.journal_dir, name, host) and not self._settling(name):
                self.release(name, f"worker {name} gone: found dead at daemon start", judged=True)
        self.orphans_checked = True

    def _settling(self, name: str) -> bool:
        """Whether that worker's release is already pending."""
        return any(release.name == name for release in self.pending)

    def heartbeat(self, current_jobs: dict[str, int | None]) -> None:
        """One write for all this host's workers; then free the jobs of silent workers elsewhere."""
        if not self.orphans_checked:
            self.release_orphans()
        self.guarded(lambda store: store.beat(current_jobs))
        timeout = self.config.heartbeat_timeout
        for name in self.guarded(lambda store: store.silent_workers(timeout)) or []:
            if name not in current_jobs and not self._settling(name):
                self.pending.append(Release(name, f"worker {name} lost: no heartbeat for {timeout:g}s", True))
        self.retry_pending()
        self.guarded(lambda store: self.tally.flush(store, self.queued))
        self.prune_tracked()

    def prune_tracked(self) -> None:
        """Delete completed tracked jobs older than ``tracked_retention`` days, and their history:
        a round every ``PRUNE_EVERY`` seconds, one batch (``Store.prune_completed``, its own short
        transaction) per call, so that a backlog goes a batch a heartbeat and never holds the loop
        or many rows at once. A round's count is logged when it ends."""
        if not self.config.tracked_retention or (self._pruning is None and time.monotonic() < self._prune_at):
            return
        after, pruned = self._pruning or (0, 0)
        cutoff = self.store.clock() - timedelta(days=self.config.tracked_retention)
        done = self.guarded(lambda store: store.prune_completed(cutoff, after))
        if not isinstance(done, tuple):
            return  # the database did not answer: the round goes on at a later call
        pruned += done[0]
        self._pruning = None if done[1] is None else (done[1], pruned)
        if self._pruning is None:
            self._prune_at = time.monotonic() + PRUNE_EVERY
            if pruned:
                log.info("pruned %d completed tracked job(s) older than %g day(s)", pruned,
                         self.config.tracked_retention)

    def recur(self) -> None:
        """Enqueue the recurring occurrences that are due (no query before one is: see ``schedule``),
        and now and then prune old runs. A config reloaded by SIGHUP brings its own schedule; one
        that is refused leaves the running schedule in place, logged once."""
        if self.scheduler.config is not self.config:
            try:
                self.scheduler = Scheduler(self.config)
            except DJError as exc:
                log.error("schedule not reloaded, keeping the running one: %s", exc)
                self.scheduler.config = self.config
        scheduler, now = self.scheduler, self.store.clock()

        def recur() -> None:
            self.guarded(lambda store: scheduler.tick(store, now))
            self.guarded(lambda store: scheduler.prune(store, now, time.monotonic()))
        self._sheltered("recur", "cannot enqueue a recurring job", recur)

    def _sheltered(self, duty: str, what: str, run: Callable[[], None]) -> None:
        """Run a duty that is not worth the supervisor (a reading, a recurring job that cannot be
        built now): what it raises beyond a database error is counted each time, logged the first
        time of a run."""
        try:
            run()
        except Exception as exc:
            self.metrics.supervisor_error(duty)
            if duty not in self._failing:
                log.error("%s: %s: %s", what, type(exc).__name__, exc)
            self._failing.add(duty)
        else:
            self._failing.discard(duty)

    def measure_queue(self) -> None:
        """One grouped query for STATUS= and the metrics: jobs due and waiting, by queue, counted
        up to ``COUNT_CAP`` (``Store.queue_depths``: a bounded read, so taken at a fixed interval)."""

        def measure() -> None:
            depths = self.guarded(lambda store: store.queue_depths())
            if isinstance(depths, Depths):
                self.queued, self.queued_text = depths.total(), depths.shown_total()
                self.metrics.queues(depths, self.store.clock(), set(present(self.config.sentinel_dir)))
        self._sheltered("measure_queue", "cannot measure the queue", measure)

    def has_work(self, queues: tuple[str, ...]) -> bool | None:
        """The idle poll: is a job ready for a pool serving ``queues`` (empty: all)? None when the
        database could not say."""
        config = self.config.replace(queues=queues) if queues else self.config
        return self.guarded(lambda store: store.has_ready(filters_from(config)))
