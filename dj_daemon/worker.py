"""One process's loop: reserve -> run -> record, sleeping only when idle.

A stop request (SIGTERM, or a first Ctrl-C) lets the job in hand finish; a
second one interrupts it, and the job is unlocked with an attempt counted.
Jobs run in this process's main thread under a ``max_run_time`` deadline; a
worker refuses to be built in another thread, where that deadline (SIGALRM)
and the stop signals could not reach it.

A database outage is waited out (one log line per outage), for as long as it
lasts in the daemon and plain ``work``; a run meant to end (``workoff``, ``work
--exit-on-complete``) is given a ``patience`` and then fails with one line, at
once when no wait can fix the error (a missing table or database, access denied).
That bound is a time, where delayed_job counts ten failed reservations in a row:
how many tries fit in an outage depends on how each fails (a refused connection
at once, a silent one after its connect timeout), while how long a run may wait
is what its operator knows. A failed reservation loses nothing: finished jobs
are deleted with the next one, and anything it may have locked all the same is
unlocked by it (see ``Store.reserve``'s ``unsure``).
"""
from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable, TypeVar

from . import display, journal, payload, titles
from .cancel import FLAG as CANCEL, JobCancelled
from .config import Config
from .errors import DatabaseError, DefectiveJob, DeserializationError, JobTimeout, WorkerError, WorkerInterrupted
from .job import Job, performing
from .journal import Journal
from .lifecycle import LIFECYCLE, hook, install_plugins, invoke_job
from .metrics import Metrics
from .records import RecordLoader
from .reports import Board
from .batch import BatchSize, ReleaseIfLong
from .retry import Policy, ScheduleError, destroys_failed, policy_for
from .sentinels import closed_gates
from .store import Filters, Store
from .turns import Turn, Turns
from .timeouts import deadline

log = logging.getLogger("dj_daemon.worker")
T = TypeVar("T")
MAX_ERROR_CHARS = 8000


@dataclass
class Stats:
    """What a worker did: runs that succeeded and runs that failed (retried or given up)."""

    succeeded: int = 0
    failed: int = 0
    #: The ids of the jobs whose last run here failed, when kept (``work`` and ``workoff`` report
    #: them: a job retried five times is one failed job); None in a daemon's worker, where the set
    #: would only grow.
    failing: set[int] | None = None

    def failed_run(self, job_id: int) -> None:
        """Count a failed run of job ``job_id`` (and the job, when the ids are kept)."""
        self.failed += 1
        if self.failing is not None:
            self.failing.add(job_id)

    @property
    def total(self) -> int:
        return self.succeeded + self.failed


def format_error(exc: BaseException) -> str:
    """``Class: message`` then the traceback, trimmed from the top to fit the column; one line
    for a handler refused or malformed, whose traceback would show our decoding, not the job."""
    if isinstance(exc, DeserializationError):
        return " ".join(f"{type(exc).__name__}: {exc}".splitlines())[:MAX_ERROR_CHARS]
    text = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_tb(exc.__traceback__))
    return text if len(text) <= MAX_ERROR_CHARS else text[:200] + "\n...\n" + text[-(MAX_ERROR_CHARS - 210):]


def rss_mib() -> float:
    """This process's resident memory now, from /proc (peak RSS would never go down)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def filters_from(config: Config) -> Filters:
    return Filters(config.queues, config.min_priority, config.max_priority, config.max_run_time)


class Worker:
    """Works jobs from one store until told to stop (or, for ``work_off``, until none is left)."""

    def __init__(self, config: Config, store: Store, name: str | None = None, *,
                 board: Board | None = None, wake_fd: int | None = None, parent_pid: int | None = None,
                 turns: Turns | None = None,
                 metrics: Metrics | None = None, journal: Journal | None = None,
                 patience: float | None = None, stats: Stats | None = None) -> None:
        """``patience``: seconds to wait out a database outage before giving up (None: for ever);
        ``stats``: where to count, when the caller reads more than the counts (``Stats.failing``)."""
        if threading.current_thread() is not threading.main_thread():
            raise WorkerError("Worker must run in the main thread: the max_run_time deadline (SIGALRM) and "
                              "the stop signals only reach that thread")
        self.config = config
        self.store = store
        self.metrics = metrics or Metrics()
        self.name = name or f"{config.hostname}:{os.getpid()}"
        self.board = board
        self.turns = turns
        self._turn: Turn | None = None  # held from a reservation to the end of its batch
        self.wake_fd = wake_fd
        self.parent_pid = parent_pid
        self.journal = journal
        self.patience = patience
        self.batch = BatchSize(config.batch_size)
        self._release_if_long: ReleaseIfLong | None = None
        self._finished: list[Job] = []
        self._policies: dict[str, tuple[Any, Policy]] = {}
        self._db_down_since: float | None = None
        self._unsure = False  # the last reservation failed: it may have locked jobs all the same
        self.filters = filters_from(config)
        self.stats = stats or Stats()
        self.stopping = False
        self._in_job = False
        self._pid = os.getpid()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._session_factory = self._load_session_factory()
        install_plugins(config.plugins)

    @property
    def _commit_each(self) -> bool:
        """Under a supervisor, finished jobs wait for the next reservation's commit only while the
        journal keeps them (see ``journal``); without one, each is deleted as it finishes."""
        return self.board is not None and self.journal is None

    def _load_session_factory(self) -> Callable[[], Any] | None:
        if not self.config.session_factory:
            return None
        return payload.resolve(self.config.session_factory, ("*",))

    def close(self) -> None:
        """Stop the batch guard's thread, close the journal, the turns and the wake pipe (idempotent)."""
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        if self._release_if_long is not None:  # first: its thread may be giving back a turn
            self._release_if_long.stop()
            self._release_if_long = None
        if self.turns is not None:
            self._end_turn()
            self.turns.close()
            self.turns = None
        if self._wake_r < 0:
            return
        previous = signal.set_wakeup_fd(-1)
        if previous != self._wake_w:  # not ours: leave it in place
            signal.set_wakeup_fd(previous)
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- stopping -------------------------------------------------------------
    def install_signal_handlers(self, daemon: bool = False) -> None:
        """TERM (and INT in a terminal) stop after the current job; a second one interrupts it.

        Under the supervisor, INT, HUP and USR2 are the supervisor's business
        and ignored here; QUIT exits at once (the supervisor releases the job).
        """
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        if daemon:
            for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR2):
                signal.signal(signum, signal.SIG_IGN)
            signal.signal(signal.SIGQUIT, lambda signum, frame: os._exit(1))
            CANCEL.install(lambda job_id: self.store.cancel_requested(job_id, self.name))  # see ``cancel``
        else:
            signal.signal(signal.SIGINT, self._on_stop_signal)

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        if self.stopping and self._in_job:
            raise WorkerInterrupted(signum)
        self.stopping = True

    def _sleep(self, seconds: float | None) -> None:
        """Idle until ``seconds`` pass, or a signal or the supervisor wakes us."""
        fds = [self._wake_r] if self.wake_fd is None else [self._wake_r, self.wake_fd]
        for fd in select.select(fds, [], [], seconds)[0]:
            os.read(fd, 4096)

    # -- the loop ---------------------------------------------------------------
    def run(self, exit_when_empty: bool = False) -> Stats:
        """``_work`` under the ``execute`` plugin callbacks, if any (see ``lifecycle``)."""
        if "execute" in LIFECYCLE.hooked:
            return LIFECYCLE.run_guarded("execute", lambda: self._work(exit_when_empty), self)
        return self._work(exit_when_empty)

    def _each_batch(self, jobs: list[Job]) -> None:
        """``_run_batch`` under the ``loop`` plugin callbacks, if any: delayed_job's ``loop`` wraps
        each ``work_off``, its reserved jobs' run."""
        if "loop" in LIFECYCLE.hooked:
            LIFECYCLE.run_guarded("loop", lambda: self._run_batch(jobs), self)
        else:
            self._run_batch(jobs)

    def _work(self, exit_when_empty: bool = False) -> Stats:
        """Reserve and run jobs until stopped, or until the queue is empty if asked.

        Idle, a worker under the supervisor waits to be woken (the supervisor
        polls once for all of them); alone, it polls every ``sleep_delay``.
        """
        while not self.stopping and not self._should_retire():
            jobs = self._reserve()
            if jobs is None:
                continue
            if not jobs:
                self._flush()
                if exit_when_empty:
                    break
                titles.idle()
                # under the supervisor, wait to be woken: it polls for us, and its death closes
                # the pipe, which wakes us too; alone, look again every sleep_delay
                if self.board is not None:
                    self.board.wait()
                self._sleep(None if self.wake_fd is not None else self.config.sleep_delay)
                if self.board is not None:
                    self.board.woke()
                continue
            self._each_batch(jobs)
            self._end_turn()
        self._flush()
        return self.stats

    def _run_batch(self, jobs: list[Job]) -> None:
        """Run reserved jobs in order; give back the rest when stopping or held up by a long job.

        The board hears of each run's end with the next job's start (see ``reports.Board``).
        """
        started = time.monotonic()
        guard = self._guard()
        guard.hold(self._turn)
        titles.busy(jobs[0].id)
        self._report_busy(jobs[0].id)
        for index, job in enumerate(jobs):
            rest = jobs[index + 1:]
            guard.arm(rest)
            try:
                ok = self.run_job(job)
            except WorkerInterrupted:
                self._report_ended(False)
                if not guard.disarm():
                    self._record(lambda: self.store.release(rest))
                self._flush()
                raise
            if guard.disarm():  # a long job: the guard gave the rest back
                self._report_ended(ok)
                break
            if rest and (self.stopping or self._should_retire()):
                self._report_ended(ok)
                self._record(lambda: self.store.release(rest))
                break
            if rest:
                titles.busy(rest[0].id)
                self._report_ended(ok, rest[0].id)
            else:
                self._report_ended(ok)
        self.batch.after(len(jobs), time.monotonic() - started)

    def _end_turn(self) -> None:
        """Give back the turn taken with the reservation (if any, and if the batch guard has not)."""
        if self._turn is not None:
            self._turn.give()
            self._turn = None

    def _guard(self) -> ReleaseIfLong:
        """The batch guard's thread, started on the first batch (after any fork)."""
        if self._release_if_long is None:
            self._release_if_long = ReleaseIfLong(self.store)
        return self._release_if_long

    def _flush(self) -> None:
        """Delete finished jobs now (the next reservation would otherwise carry them)."""
        if self._finished:
            self._record(lambda: self.store.complete(*self._finished))
            self._flushed()

    def _flushed(self) -> None:
        """Finished jobs are deleted, committed: the journal need not keep them any longer."""
        self._finished = []
        if self.journal is not None:
            self.journal.clear()

    def register(self, folder: str | None = None) -> None:
        """A daemon worker's heartbeat row, written before it reserves anything (waiting out an
        outage): whatever it locks is then known to be its own, to free once it is gone.

        In the same transaction it takes back what a dead worker of the same name left: its pid
        was that worker's (pids wrap). With ``folder``, where it holds its journal
        (``journal.claim``), the dead one's journal, read first, says which of those jobs
        finished (see ``take_back``); then its own journal starts there. A daemon worker that
        cannot keep one deletes each job as it ends."""
        completed = journal.read(folder, self.name) if folder is not None else None
        held = self._before_work(lambda: self.store.register_worker(self.name, self.config.hostname, self._pid,
                                                                    completed))
        try:
            self._start_journal(folder, held, "a dead worker of its name")
        except WorkerError as exc:
            log.error("%s; deleting each job as it ends", exc)

    def take_back(self, folder: str) -> None:
        """A named worker starting (``delayed_job work --name``): settle what its last run, killed,
        left locked under this name, before reserving anything, as the supervisor settles a dead
        worker's jobs (``Store.worker_gone``): what its journal lists as finished is deleted, not
        run again; the one it was running gets an attempt counted and runs again now; the rest
        are unlocked. Then its journal starts afresh (the caller holds the name: ``standalone``)."""
        completed = journal.read(folder, self.name)
        error = f"worker {self.name} gone: found holding it at its restart"
        held = self._before_work(lambda: self.store.worker_gone(self.name, error, completed))
        self._start_journal(folder, held, "its last run")

    def _start_journal(self, folder: str | None, held: int | None, whose: str) -> None:
        """Once what this worker's name held is settled (``held`` jobs; None if told to stop
        first, when the old journal stays for the next start to read): a journal of its own
        in ``folder``, if given."""
        if self.stopping:
            return
        if held:
            log.warning("worker %s: took back %d job(s) %s held", self.name, held, whose)
        if folder is None:
            return
        try:
            self.journal = Journal(folder, self.name)
        except OSError as exc:
            raise WorkerError(f"cannot keep the journal of worker {self.name} in {folder}: {exc.strerror}") from None

    def _before_work(self, operation: Callable[[], T]) -> T | None:
        """``operation()``, waiting out a database outage (a bounded run gives up after its
        ``patience``); None if told to stop meanwhile."""
        while not self.stopping:
            try:
                return operation()
            except DatabaseError as exc:
                self._database_down(exc)
        return None

    def _should_retire(self) -> bool:
        """Time to exit between jobs: parent gone, ``max_jobs`` done, or above ``max_rss`` after a job
        (a fresh worker over the limit would only be replaced by another)."""
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            log.warning("worker %s: supervisor went away, exiting", self.name)
            return True
        if self.config.max_jobs and self.stats.total >= self.config.max_jobs:
            log.info("worker %s: %d jobs done (max_jobs), restarting", self.name, self.stats.total)
            return True
        if self.config.max_rss and self.stats.total and rss_mib() > self.config.max_rss:
            log.info("worker %s: %.0f MiB resident (max_rss %d), restarting", self.name, rss_mib(),
                     self.config.max_rss)
            return True
        return False

    def _reserve(self) -> list[Job] | None:
        """Jobs to run; None to look again (after a database error, logged once per outage and
        backed off, or when everything reserved was parked)."""
        limit = self.batch.current
        if self.config.max_jobs:
            limit = max(1, min(limit, self.config.max_jobs - self.stats.total))
        if self.turns is not None:
            self._turn = self.turns.take(lambda: self.stopping)
        try:
            reserved = self.store.reserve(self.name, self.filters, limit, closed_gates(self.config.sentinel_dir),
                                          self.config.hostname, self._finished, self._unsure)
        except DatabaseError as exc:
            self._end_turn()
            self._unsure = True  # its commit may have landed, its answer lost: see ``Store.reserve``
            self._database_down(exc)
            return None
        self._unsure = False
        if self._finished:
            self._flushed()
        for job, state in reserved.parked:
            log.info("job parked as %s (drain sentinel present) %s", state.value, job.log_context(),
                     extra={"job": job})
            self.metrics.parked(job.queue, job.name, state.value)
        if not reserved.jobs:
            self._end_turn()  # nothing to run: another worker's turn (its batch keeps it, see ``turns``)
            if reserved.parked:
                return None  # look again at once: what follows the parked jobs may be runnable
        if self._db_down_since is not None:
            log.warning("worker %s: database back after %.1fs", self.name, time.monotonic() - self._db_down_since)
            self._db_down_since = None
        return reserved.jobs

    def _database_down(self, exc: DatabaseError, unwritten: bool = False) -> None:
        """Back off after a database error, logged once per outage; with a ``patience``, give up
        (raise) once the outage has lasted that long, or at once if no wait can fix it.
        ``unwritten``: a job's outcome waits to be written (the error line says so)."""
        self.metrics.database_error("worker")
        now = time.monotonic()
        first = self._db_down_since is None
        if first:
            self._db_down_since = now
        down = now - self._db_down_since
        if self.patience is not None and (exc.permanent or down >= self.patience):
            raise self._give_up(exc, unwritten or bool(self._finished)) from exc
        if first:
            log.error("worker %s: %s; retrying%s", self.name, exc,
                      "" if self.patience is None else f" for up to {self.patience:g}s (database_patience)")
        pause = min(max(down / 4, 0.5), 2.0)  # back soon after the database is
        self._sleep(pause if self.patience is None else min(pause, self.patience - down))

    def _give_up(self, exc: DatabaseError, unwritten: bool) -> DatabaseError:
        """The one-line error a bounded run ends with; an outcome it could not write is not lost
        but left with the job's lock, which expires after ``max_run_time``."""
        line = str(exc) if exc.permanent else f"{exc} (still failing after database_patience: {self.patience:g}s)"
        if unwritten and self.journal is not None:  # a named worker: its journal knows what finished
            line += (f"; their outcome not written, jobs locked by {self.name} stay locked until it starts "
                     "again under that name (what finished is then deleted, not run again) or max_run_time passes")
        elif unwritten:
            line += (f"; their outcome not written, jobs locked by {self.name} stay locked until "
                     "max_run_time passes, then run again")
        return DatabaseError(line, permanent=exc.permanent)

    def _record(self, operation: Callable[[], T]) -> T:
        """Write a job's outcome, waiting out a database outage: the outcome must not be lost."""
        while True:
            try:
                return operation()
            except DatabaseError as exc:
                self._database_down(exc, unwritten=True)

    def _report_busy(self, job_id: int) -> None:
        """Tell the supervisor (if any) which job this worker starts."""
        if self.board is not None:
            self.board.busy(job_id)

    def _report_ended(self, ok: bool, next_job: int = 0) -> None:
        """Tell the supervisor (if any) that a run ended, and which job comes next (0: none)."""
        if self.board is not None:
            self.board.ended(ok, next_job)

    def _journal_done(self, job: Job) -> None:
        """Note a job that returned, before anything else, in the journal that outlives this process
        and its supervisor (see ``journal``); a full journal is emptied by a commit."""
        if self.journal is not None and not self.journal.note(job.id):
            self._flush()

    def run_job(self, job: Job, callbacks: bool = True) -> bool:
        """Run one reserved job and record the outcome; True when it succeeded. The ``perform``
        plugin callbacks, if any, wrap it all (see ``lifecycle``; they call it with ``callbacks`` False)."""
        if callbacks and "perform" in LIFECYCLE.hooked:
            return LIFECYCLE.run_guarded("perform", lambda: self.run_job(job, False), self, job)
        started = time.monotonic()
        if job.defect is not None:  # an unreadable row: nothing to run, nothing to retry
            return self._failed(job, None, job.name, DefectiveJob(job.defect), started)
        if log.isEnabledFor(logging.INFO):
            log.info("job start %s", job.log_context(), extra={"job": job})
        loader = RecordLoader(self._session_factory)
        try:
            call = payload.decode(job.handler, self.config.allowed_modules, loader)
        except DeserializationError as exc:
            loader.finish(False)
            return self._failed(job, None, job.name, exc, started)
        if call.unique_key is not None:  # its key row goes with it (``store.unique``)
            job = replace(job, unique_key=call.unique_key)
        policy = self._policy(call)
        if job.attempts and policy.gives_up(job.attempts):
            loader.finish(False)
            return self._out_of_attempts(job, call, policy, started)
        running = Running(self, job, policy.max_run_time)
        try:
            invoke_job(call, job, loader, running)
        except WorkerInterrupted as exc:
            self._record(lambda: self.store.reschedule(job, job.attempts + 1, format_error(exc), job.run_at))
            raise
        except (Exception, JobTimeout) as exc:  # a DeserializationError (a task refused) cannot be retried away
            if not running.succeeded and CANCEL.requested(job.id):
                return self._cancelled(job, started)
            if not running.succeeded:
                return self._failed(job, call.owner, call.name, exc, started,
                                    None if isinstance(exc, DeserializationError) else policy)
            log.exception("an invoke_job callback raised after job %s succeeded; it stays done", job.id)
        if job.strand is not None or policy.commit_each or self._commit_each:
            # a tracked job's state is read by people: "completed" now, not with the next job; the
            # next job of its strand may start only once its row is gone; and a job whose class
            # asks it is never run again after its host is lost (see ``journal``)
            self._flush()
        self.stats.succeeded += 1
        if self.stats.failing:
            self.stats.failing.discard(job.id)
        seconds = time.monotonic() - started
        self.metrics.performed(job.queue, call.name, seconds)
        if log.isEnabledFor(logging.INFO):
            log.info("job done %s in %.3fs", job.log_context(), seconds, extra={"job": job, "duration": seconds})
        return True

    def _cancelled(self, job: Job, started: float) -> bool:
        """Record a job that stopped because it was cancelled (see ``cancel``): removed, not retried."""
        self._record(lambda: self.store.finish_cancelled(job))
        log.warning("job cancelled %s after %.3fs", job.log_context(), time.monotonic() - started, extra={"job": job})
        return False

    def _policy(self, call: payload.Call) -> Policy:
        """The job's retry policy; a function's is worked out once (a perform-object's own
        attributes may change it from one job to the next, so it is worked out every time, as is
        a policy whose max_attempts was stored with the job at enqueue)."""
        if call.owner is not call.function or call.max_attempts is not None:
            return policy_for(call.owner, self.config, call.max_attempts)
        cached = self._policies.get(call.name)
        if cached is None or cached[0] is not call.owner:
            cached = self._policies[call.name] = (call.owner, policy_for(call.owner, self.config))
        return cached[1]

    def _out_of_attempts(self, job: Job, call: payload.Call, policy: Policy, started: float) -> bool:
        """Fail for good, unrun, a job whose attempts ran out without failing here: each of its last
        runs ended its worker (os._exit, a signal, a segfault, the OOM killer), which the supervisor
        counted as an attempt. Its last error, naming the signal, is kept after a note."""
        note = f"gave up after {job.attempts} attempts (max_attempts {policy.max_attempts}); the last one: "
        log.warning("job failed for good %s: %s", job.log_context(), note.rstrip(": "), extra={"job": job})
        self._fail(job, call.owner, call.name, started, note)
        return False

    def _failed(self, job: Job, owner: Any, name: str, exc: BaseException, started: float,
                policy: Policy | None = None) -> bool:
        """Count the attempt; reschedule, or fail for good (no policy: cannot retry, as a handler
        that cannot load, which delayed_job too fails without its ``error`` event).

        The job's ``error`` and ``after`` hooks have run (``invoke_job``); its
        ``failure`` hook runs once it is failed for good.
        """
        if policy is None:
            self._fail_for_good(job, owner, name, started, format_error(exc))
        elif "error" in LIFECYCLE.hooked:
            LIFECYCLE.run_guarded("error", lambda: self._retry(job, owner, name, started, exc, policy), self, job)
        else:
            self._retry(job, owner, name, started, exc, policy)
        return False

    def _retry(self, job: Job, owner: Any, name: str, started: float, exc: BaseException, policy: Policy) -> None:
        """Reschedule a failed attempt with backoff (or the job's ``reschedule_at``), or give up."""
        attempts, error = job.attempts + 1, format_error(exc)
        if policy.gives_up(attempts):
            return self._fail_for_good(job, owner, name, started, error)
        try:
            run_at = policy.next_run_at(attempts, self.store.clock())
        except ScheduleError as bad:  # the job's own schedule is broken: fail it, saying why first
            return self._fail_for_good(job, owner, name, started, f"{bad}\n{error}")
        self._record(lambda: self.store.reschedule(job, attempts, error, run_at))
        self.stats.failed_run(job.id)
        seconds = time.monotonic() - started
        self.metrics.failed(job.queue, name, seconds, retrying=True)
        log.warning("job failed, retry at %s %s in %.3fs: %s: %s",
                    display.when(run_at, display.zone(self.config.display_timezone)), job.log_context(),
                    seconds, type(exc).__name__, exc, extra={"job": job, "duration": seconds})

    def _fail_for_good(self, job: Job, owner: Any, name: str, started: float, error: str) -> None:
        """Fail for good after this attempt failed with ``error``."""
        seconds = time.monotonic() - started
        log.warning("job failed for good %s in %.3fs: %s", job.log_context(), seconds, error.splitlines()[0],
                    extra={"job": job, "duration": seconds})
        self._fail(job, owner, name, started, "", error)

    def _fail(self, job: Job, owner: Any, name: str, started: float, note: str, error: str | None = None) -> None:
        """Fail a job for good under the ``failure`` plugin event: keep its row (``failed_at``) or
        delete it (``destroy_failed_jobs``), then call its ``failure`` hook. With ``error``, this
        attempt failed and counts; without, its attempts ran out in workers that died, and ``note``
        goes before the error recorded then."""
        def fail() -> None:
            if destroys_failed(owner, self.config):
                last = self._record(lambda: self.store.destroy_failed(job, note, error))
                log.warning("job failed for good %s, destroyed (destroy_failed_jobs); its last error: %s",
                            job.log_context(), last, extra={"job": job})
            elif error is None:
                self._record(lambda: self.store.give_up(job, note))
            else:
                self._record(lambda: self.store.reschedule(job, job.attempts + 1, error, None))
            self.stats.failed_run(job.id)
            self.metrics.failed(job.queue, name, time.monotonic() - started, retrying=False)
            hook(owner, "failure", job)
        if "failure" in LIFECYCLE.hooked:
            LIFECYCLE.run_guarded("failure", fail, self, job)
        else:
            fail()


class Running:
    """A worker's frame around a job's ``before`` hook and call (see ``lifecycle.invoke_job``): the
    second stop signal may interrupt it, the ``max_run_time`` deadline bounds it, ``job.current()``
    names the job. Leaving it cleanly is the job's success, noted at once, before any other hook:
    a worker lost in a ``success`` hook does not have its job run again (see ``journal``)."""

    __slots__ = ("_worker", "_job", "_deadline", "_performing", "succeeded")

    def __init__(self, worker: Worker, job: Job, seconds: float) -> None:
        self._worker, self._job, self.succeeded = worker, job, False
        self._deadline = deadline(seconds)
        self._performing = performing(job, worker.config.allowed_modules)

    def __enter__(self) -> None:
        self._worker._in_job = True
        self._deadline.__enter__()
        self._performing.__enter__()

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        try:
            self._performing.__exit__()
            self._deadline.__exit__()
        finally:
            self._worker._in_job = False
        if kind is None and CANCEL.requested(self._job.id):
            raise JobCancelled(f"job {self._job.id} stopped: cancelled")  # not done: no success hook
        if kind is None:  # the job is finished: deleted with the next reservation or when idle
            self.succeeded = True
            self._worker._finished.append(self._job)
            self._worker._journal_done(self._job)
        return False
