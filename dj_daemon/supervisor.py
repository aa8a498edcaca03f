"""The daemon's master: a loop that only sleeps, reaps, spawns and dispatches.

Signal handlers record the signal and return; the loop calls one small
``handle_<sig>`` method per signal (as gunicorn's arbiter).

| signal     | supervisor                                                     | worker                             |
|------------|----------------------------------------------------------------|------------------------------------|
| TERM, INT  | graceful: STOPPING=1, TERM workers, wait ``graceful_timeout``, | TERM: finish the job, exit 0.      |
|            | KILL the rest and release their jobs, exit 0. A second one:    | INT: ignored.                      |
|            | immediate.                                                     |                                    |
| QUIT       | immediate: QUIT workers, release their jobs, exit 0            | exit now                           |
| HUP        | RELOADING=1, reread config, start new workers and retire the   | ignored                            |
|            | old ones one at a time (each finishes its job), READY=1        |                                    |
| USR2       | log a status dump                                              | ignored                            |
| CHLD       | reap, release the dead worker's jobs (attempt counted, signal  | default                            |
|            | named in last_error), respawn with backoff                     |                                    |

Workers tell the supervisor what they do on a board each, memory they share
with it (see ``reports``, which words STATUS= and the status dump too);
``pools.Respawns`` times respawns after early deaths; its database duties
(releases, heartbeats, polls, queue readings) are in ``upkeep``. A worker
deletes its finished jobs with its next reservation, and keeps them meanwhile
in a journal of its own (see ``journal``); if it dies first, the supervisor
(or, were it killed too, the next one) reads that journal and deletes them
instead of running them again. Idle workers ``wait`` on a pipe of their own:
the supervisor polls the database once for all of them every ``poll_interval``
(or at once when an enqueue on this host nudges it, see ``nudge``, or
PostgreSQL announces one from any host, see ``listen``) and wakes the idle
workers of a pool that has work (see ``wakeups``). Nothing that holds a socket
crosses a fork: each worker opens its own store after the fork and drops the
supervisor's without closing it (see ``forked``, the child's side of the
fork).
"""
from __future__ import annotations

import logging
import os
import select
import signal
import time
from typing import Callable

from . import forked, journal, listen, metrics, nudge, reports
from .cancel import Canceller
from .config import Config
from .errors import ConfigError
from .notify import Notifier
from .pools import Pool, Respawns, pools_of, pools_text
from .processes import describe_exit
from .reports import Board, Slot
from .upkeep import Upkeep
from .wakeups import Wakeups

log = logging.getLogger("dj_daemon.supervisor")
#: the signals the loop takes, each to its ``handle_<name>``
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR2, signal.SIGCHLD)
STATUS_EVERY = 5.0      # seconds between queue readings (STATUS=, metrics): each reads a bounded few rows
FIRST_BEAT = 1.0        # seconds from start to the first heartbeat round, at most


class Supervisor:
    """Forks the configured worker pools and keeps them running until told to stop."""

    def __init__(self, config: Config, reload_config: Callable[[], Config], notifier: Notifier | None = None,
                 exit_on_complete: bool = False):
        """``exit_on_complete``: stop once every worker waits and no job is ready (``_poll``)."""
        self.config = config
        self.exit_on_complete = exit_on_complete
        self.reload_config = reload_config
        self.notifier = notifier or Notifier()
        self.pools: list[Pool] = pools_of(config)
        self.slots: dict[int, Slot] = {}
        self.generation = 0
        self.stopping = False
        self.stop_deadline = 0.0
        self.reloading = False
        self.ready_sent = False
        self.jobs_done = 0
        self.respawns = Respawns(self.pools)
        self.next_watchdog = 0.0
        # the first heartbeat waits: each worker writes its own row as it starts (``Worker.register``),
        # and the round's first statements (compiled anew, the pruning) would take a core from the
        # workers on their way to their first job
        self.next_beat = time.monotonic() + min(FIRST_BEAT, config.heartbeat_interval)
        # the first queue reading waits too, for the workers to start on a backlog first
        self.last_status = time.monotonic()
        self.signals: list[int] = []
        self.pid = os.getpid()
        # and the first read of cancel requests: at start no worker of ours holds a job to cancel,
        # and the requests an earlier run left can wait as long (3.5 ms of CPU here, taken from the
        # workers on their way to their first job)
        self.canceller = Canceller()
        self.canceller.next_read = self.next_beat

    # -- the loop -------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped; returns the exit code."""
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._install_signals()
        nudges = nudge.listen(self.config)
        self.metrics = metrics.start(self.config)
        self.journal_dir = journal.folder_of(self.config.journal_dir, self.config.sentinel_dir)
        try:
            journal.prepare(self.journal_dir)
        except OSError as exc:
            raise ConfigError(f"cannot keep worker journals in {self.journal_dir}: {exc.strerror} "
                              "(set [daemon] journal_dir to a folder this user can write)") from None
        self.upkeep = Upkeep(self.config, self.metrics, self.journal_dir, self.notifier.watchdog_interval)
        self.wakeups = Wakeups(nudges, listen.Ear(self.upkeep.store))
        log.info("supervisor %d starting %s on %s", self.pid, pools_text(self.pools), self.config.safe_url)
        self.upkeep.release_orphans()
        while True:
            for signum in self._take_signals():
                getattr(self, f"handle_{signal.Signals(signum).name[3:].lower()}")()
            self._count_runs()
            self._reap()
            if self.stopping:
                self._enforce_stop_deadline()
            else:
                self._maintain()
            if self.stopping and not self.slots:
                break
            self._wait()
        self.upkeep.retry_pending()
        self.notifier.status("stopped")
        log.info("supervisor %d stopped", self.pid)
        self.wakeups.close()
        self.upkeep.store.dispose()
        self.metrics.close()
        return 0

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in HANDLED:
            signal.signal(signum, lambda taken, frame: self.signals.append(taken))

    def _take_signals(self) -> list[int]:
        taken, self.signals[:] = list(self.signals), []
        return taken

    def _wait(self) -> None:
        """Sleep until a signal, a worker's message, or the next periodic duty; then a new turn
        begins, with its own time for the database (see ``upkeep``)."""
        self.upkeep.new_turn()
        timeout = self.wakeups.timeout(min(1.0, self.notifier.watchdog_interval or 1.0, self.config.poll_interval),
                                       self.slots.values())
        try:
            ready, _, _ = select.select([self._wake_r, *self.wakeups.fds()], [], [], timeout)
        except InterruptedError:
            return
        if self._wake_r in ready:
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass
        self.wakeups.heed(ready, self.slots.values())

    def _maintain(self) -> None:
        now = time.monotonic()
        self.upkeep.retry_pending()  # releases the database did not take yet
        self._spawn_missing(now)
        self._retire_old_generation()
        self._poll(now)
        if now >= self.next_beat:
            self.next_beat = now + self.config.heartbeat_interval
            self.upkeep.heartbeat({s.name: s.job for s in self.slots.values()})
        self.canceller.turn(lambda: self.upkeep.guarded(lambda store: store.requests_of(self.config.hostname)),
                            lambda job_id: self.upkeep.guarded(lambda store: store.reconsider(job_id)),
                            self.slots.values(), self._signal, self.config.cancel_grace)
        self.upkeep.recur()
        idle = not reports.busy(self.slots.values())
        if now - self.last_status >= self.wakeups.ear.reading_every(STATUS_EVERY, idle=idle):
            self.upkeep.measure_queue()
            self.last_status = time.monotonic()
        self._report()

    # -- signals ----------------------------------------------------------------------
    def handle_term(self) -> None:
        if self.stopping:
            log.warning("second stop request: stopping now")
            self._kill_all(signal.SIGKILL, "killed on immediate shutdown")
            return
        log.info("stopping: workers finish their jobs within %gs", self.config.graceful_timeout)
        self.stopping = True
        self.stop_deadline = time.monotonic() + self.config.graceful_timeout
        self.notifier.stopping()
        self.notifier.status(f"stopping, {reports.busy(self.slots.values())} jobs finishing")
        for slot in self.slots.values():
            self._signal(slot, signal.SIGTERM)

    handle_int = handle_term

    def handle_quit(self) -> None:
        log.warning("QUIT: stopping now")
        self.stopping = True
        self.notifier.stopping()
        self._kill_all(signal.SIGQUIT, "stopped by SIGQUIT on the supervisor")

    def handle_hup(self) -> None:
        self.notifier.reloading()
        try:
            config = self.reload_config()
            pools = pools_of(config)
        except ConfigError as exc:
            log.error("reload failed, keeping the running config: %s", exc)
            self.notifier.ready()
            return
        self.config, self.pools = config, pools
        self.upkeep.config = config
        self.respawns = Respawns(pools)
        self.generation += 1
        self.reloading = True
        log.info("reloaded config: %s; replacing workers one at a time", pools_text(self.pools))

    def handle_usr2(self) -> None:
        labels = [pool.label() for pool in self.pools]
        for line in reports.status_dump(self._status_text(), self.slots.values(), labels, time.monotonic()):
            log.info("%s", line)

    def handle_chld(self) -> None:
        """Nothing beyond waking the loop, which reaps on every turn."""

    # -- workers ----------------------------------------------------------------------
    def _spawn_missing(self, now: float) -> None:
        self.respawns.note_survivors([s for s in self.slots.values() if s.generation == self.generation], now)
        for index, pool in enumerate(self.pools):
            current = [s for s in self.slots.values() if s.pool == index and s.generation == self.generation]
            if len(current) < pool.size and self.respawns.due(index, now):
                for _ in range(pool.size - len(current)):
                    self._spawn(index)

    def _spawn(self, index: int) -> None:
        """Fork a worker. Our signals are blocked across the fork: one sent to the new worker before
        it has its own handlers stays pending until it has them, instead of being taken by a copy of
        ours (a SIGTERM lost that way left the worker running until the graceful timeout)."""
        wake_r, wake_w = os.pipe()
        board = Board()
        number = min(set(range(len(self.slots) + 1)) - {s.number for s in self.slots.values()})  # as ps shows
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = forked.run_worker(number, self.pools[index], self.config, self._inherited(wake_w),
                                         board=board, wake_fd=wake_r, mask=mask, parent_pid=self.pid,
                                         metrics=self.metrics, journal_dir=self.journal_dir,
                                         workers=sum(p.size for p in self.pools))
            except BaseException:  # log, never let a child run the parent's code
                log.exception("worker %d crashed", os.getpid())
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(wake_r)
        os.set_blocking(wake_w, False)
        name = f"{self.config.hostname}:{pid}"
        self.upkeep.forget(name)
        self.slots[pid] = Slot(pid, name, index, self.generation, time.monotonic(), board, wake=wake_w, number=number)
        log.info("spawned worker %s for pool %s", name, self.pools[index].label())

    def _inherited(self, wake_w: int) -> forked.Inherited:
        """What a worker forked now holds of ours and must let go: our signals, the pipes (our end
        ``wake_w`` of its own, the loop's, the other workers'), the sockets and connections."""
        pipes = (wake_w, self._wake_r, self._wake_w, *(s.wake for s in self.slots.values()))
        return forked.Inherited(HANDLED, pipes, (self.wakeups.forget_in_child, self.notifier.close_in_child,
                                                 self.metrics.close_in_child, self.upkeep.store.forget_connections))

    def _signal(self, slot: Slot, signum: int) -> None:
        try:
            os.kill(slot.pid, signum)
        except ProcessLookupError:
            pass

    def _kill_all(self, signum: int, reason: str) -> None:
        for slot in self.slots.values():
            slot.kill_reason = slot.kill_reason or reason
            self._signal(slot, signum)

    def _enforce_stop_deadline(self) -> None:
        if self.slots and time.monotonic() >= self.stop_deadline:
            log.warning("graceful timeout: killing %d workers; their jobs go back to the queue", len(self.slots))
            self._kill_all(signal.SIGKILL, f"killed after graceful_timeout ({self.config.graceful_timeout:g}s) "
                                           "on shutdown")
            self.stop_deadline = float("inf")

    def _retire_old_generation(self) -> None:
        """After a reload, TERM one old worker at a time; READY=1 when none is left."""
        old = [s for s in self.slots.values() if s.generation < self.generation]
        if not old:
            if self.reloading:
                self.reloading = False
                log.info("reload complete")
                self.notifier.ready()
            return
        if not any(s.retiring for s in old):
            old[0].retiring = True
            self._signal(old[0], signal.SIGTERM)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.slots.pop(pid, None)
            if slot is not None:
                self._count_ended(slot)  # its board outlives it: its last runs count
                self._worker_ended(slot, status)

    def _worker_ended(self, slot: Slot, status: int) -> None:
        os.close(slot.wake)
        slot.board.close()
        self.metrics.worker_gone(slot.pid)
        how, abnormal = describe_exit(status)
        lived = time.monotonic() - slot.started
        reason = f"{slot.kill_reason}: " if slot.kill_reason else ""
        error = f"{reason}worker {slot.name} {how}"
        (log.warning if abnormal else log.info)("worker %s %s after %.1fs%s", slot.name, how, lived,
                                                f" while running job {slot.job}" if slot.job else "")
        # its journal tells the jobs it finished, the one it was running, and the rest never started
        self.upkeep.release(slot.name, error)
        if slot.generation == self.generation and not self.stopping and slot.pool < len(self.pools):
            self.respawns.plan(slot, abnormal, lived)

    # -- reports, polls and status -----------------------------------------------------
    def _count_runs(self) -> None:
        """Count the runs the workers ended since the last turn of the loop."""
        for slot in self.slots.values():
            self._count_ended(slot)

    def _count_ended(self, slot: Slot) -> None:
        ok, failed = slot.newly_ended()
        if ok or failed:
            self.jobs_done += ok + failed
            self.upkeep.tally.count(ok, failed)
            self.respawns.healthy(slot.pool)

    def _poll(self, now: float) -> None:
        """The idle poll, when due (see ``wakeups``). With ``exit_on_complete`` (delayed_job's ``run
        --exit-on-complete``), a poll that finds every worker waiting and the database sure that no
        pool has a job ready stops the daemon."""
        nothing_left = self.wakeups.turn(now, self.config.poll_interval, self.slots.values(), self.pools,
                                         self.upkeep.has_work)
        if self.exit_on_complete and nothing_left:
            log.info("no job left to run (--exit-on-complete): stopping")
            self.handle_term()

    def _status_text(self) -> str:
        return reports.status_text(self.slots.values(), self.jobs_done, self.upkeep.queued_text,
                                   self.respawns.waiting(time.monotonic()), self.upkeep.error)

    def _report(self) -> None:
        """READY=1 once every first worker is up; STATUS= on change; WATCHDOG=1 while this loop turns."""
        up = sum(1 for s in self.slots.values() if s.up)
        busy = reports.busy(self.slots.values())
        self.metrics.workers(busy, len(self.slots) - busy)
        if not self.ready_sent and up >= sum(p.size for p in self.pools):
            self.ready_sent = True
            self.notifier.ready()
            log.info("ready: %s", pools_text(self.pools))
        self.notifier.status(self._status_text())
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        # the watchdog watches this loop, which runs whatever the workers do: workers that keep
        # dying are backed off and named in STATUS=, and systemd restarting us would not cure them
        if interval and now >= self.next_watchdog:
            self.next_watchdog = now + interval
            self.notifier.watchdog()

