"""Recurring jobs: the ``@recurring`` decorator, the schedule a daemon keeps, and its listing.

The schedule is the config's ``[schedule:NAME]`` entries plus those declared
with ``@recurring`` in the modules ``schedule_modules`` names (imported by the
supervisor, each inside ``allowed_modules``). Every supervisor keeps the same
schedule: on each turn of its loop, once an occurrence is due (no query
before), it enqueues what ``recurrence.plan`` says, each occurrence with its
row in the runs table (``store.recurring``), so that any number of hosts
enqueue each occurrence once. A job enqueued so is an ordinary row: workers
reserve, gate (a tracked target is parked by a drain) and retry it as any.
"""
from __future__ import annotations

import importlib
import logging
from datetime import datetime, timedelta
from typing import Any, Callable, NamedTuple, Sequence

from .api import Queue
from .config import Config
from .errors import ConfigError, EnqueueError
from .job import NewJob
from .payload import module_allowed, path_of, resolve
from .recurrence import GRACE, Entry, plan
from .store import recurring as runs
from .store.recurring import LastRun

log = logging.getLogger("dj_daemon.schedule")
#: Entries declared in code by ``@recurring``, by name, as their modules were imported.
DECLARED: dict[str, Entry] = {}
#: Seconds between two prunings of the runs table, by one supervisor.
PRUNE_EVERY = 600.0


def recurring(when: str | int | timedelta, *, name: str | None = None, args: Sequence[Any] = (),
              kwargs: dict[str, Any] | None = None, queue: str | None = None, priority: int | None = None,
              timezone: str = "UTC", missed: str = "skip", grace: float = GRACE) -> Callable[[Any], Any]:
    """Declare the decorated job function a recurring job: ``when`` is a cron expression, or an
    interval (seconds or a timedelta). ``name`` (default: its ``pkg.mod:func``) keys its
    occurrences across hosts. The daemon runs it once its module is in ``schedule_modules``."""

    def declare(function: Any) -> Any:
        target = path_of(function)
        cron, interval = (when, None) if isinstance(when, str) else (None, _whole_seconds(when))
        entry = Entry(name=name or target, target=target, cron=cron, interval=interval, args=tuple(args),
                      kwargs=dict(kwargs or {}), queue=queue, priority=priority, timezone=timezone,
                      missed=missed, grace=grace)
        known = DECLARED.get(entry.name)
        if known is not None and known.target != target:
            raise ConfigError(f"schedule entry {entry.name!r} is declared twice: {known.target} and {target}")
        DECLARED[entry.name] = entry
        return function

    return declare


def _whole_seconds(when: int | timedelta) -> int:
    seconds = when.total_seconds() if isinstance(when, timedelta) else when
    if isinstance(seconds, bool) or not float(seconds).is_integer():
        raise ConfigError(f"a recurring interval is a whole number of seconds, not {when!r}")
    return int(seconds)


def entries(config: Config) -> list[Entry]:
    """The schedule: the config's entries, then those declared in ``schedule_modules`` (imported
    here); a name given twice, a module or target outside ``allowed_modules``, is a ``ConfigError``."""
    for module in config.schedule_modules:
        if not module_allowed(module, config.allowed_modules):
            raise ConfigError(f"schedule_modules: {module} is not in allowed_modules")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"schedule_modules: cannot import {module}: {exc}") from None
    found = list(config.schedule)
    names = {entry.name for entry in found}
    for entry in DECLARED.values():
        if module_allowed(entry.target.partition(":")[0], config.schedule_modules):
            if entry.name in names:
                raise ConfigError(f"schedule entry {entry.name!r} is both in the config file and declared in code")
            found.append(entry)
    return found


class Planned(NamedTuple):
    """An entry ready to enqueue: its value, and its target resolved."""

    entry: Entry
    target: Any

    def job(self, queue: Queue) -> NewJob:
        """The row one occurrence inserts, built as ``enqueue`` builds it (the decorator's queue,
        priority, run_at and tracking apply), afresh for each occurrence."""
        return queue.prepare_call(self.target, self.entry.args, dict(self.entry.kwargs), queue=self.entry.queue,
                                  priority=self.entry.priority)


def prepared(config: Config, schedule: list[Entry]) -> list[Planned]:
    """Each entry's target resolved under ``allowed_modules``, and its job row built once to
    try it; an unknown target, or arguments it cannot store, is one ``ConfigError`` naming the entry."""
    queue = Queue(config, plugins=False)
    planned = []
    for entry in schedule:
        try:
            one = Planned(entry, resolve(entry.target, config.allowed_modules, error=ConfigError))
            one.job(queue)
        except (ConfigError, EnqueueError) as exc:
            raise ConfigError(f"schedule entry {entry.name!r}: {exc}") from None
        planned.append(one)
    return planned


class Scheduler:
    """One supervisor's schedule: what it handled of each entry, and when it has work next."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.planned = prepared(config, entries(config))
        self.queue = Queue(config, plugins=False)
        self.handled: dict[str, datetime | None] | None = None  # read from the runs table first
        self.wake_at: datetime | None = None
        self.prune_at = 0.0

    def tick(self, store: Any, now: datetime) -> int:
        """Enqueue what is due (nothing, and no query, before ``wake_at``); returns how many this
        host enqueued. A database error leaves the rest for the next turn (and its grace)."""
        if not self.planned or (self.wake_at is not None and now < self.wake_at):
            return 0
        if self.handled is None:
            last = runs.last_runs(store)
            self.handled = {p.entry.name: getattr(last.get(p.entry.name), "occurrence", None) for p in self.planned}
        enqueued = 0
        for planned in self.planned:
            entry = planned.entry
            for occurrence in plan(entry, self.handled[entry.name], now):
                job_id = runs.enqueue(store, entry.name, occurrence, planned.job(self.queue), self.config.hostname)
                self.handled[entry.name] = occurrence
                if job_id is not None:
                    enqueued += 1
                    missed = occurrence <= now - timedelta(seconds=entry.grace)  # a run_once stand-in
                    log.info("recurring %s: enqueued job %d for %s%s", entry.name, job_id,
                             f"{occurrence:%Y-%m-%d %H:%M:%S}",
                             " (missed while no daemon ran: one job for them all, missed = run_once)" if missed else "")
        self.wake_at = min(p.entry.next_after(now) for p in self.planned)
        return enqueued

    def prune(self, store: Any, now: datetime, monotonic: float) -> None:
        """Every ``PRUNE_EVERY`` seconds, each entry's old rows (see ``store.recurring.prune``)."""
        if not self.planned or monotonic < self.prune_at:
            return
        for entry, _ in self.planned:
            runs.prune(store, entry.name, now - timedelta(seconds=entry.grace) - runs.KEEP_FOR)
        self.prune_at = monotonic + PRUNE_EVERY


class Line(NamedTuple):
    """One entry as ``delayed_job schedule`` and ``long_jobs status`` show it."""

    name: str
    when: str
    target: str
    missed: str
    last: LastRun | None
    next: datetime


def listing(config: Config, store: Any, now: datetime) -> list[Line]:
    """Every entry with its last run (from the runs table) and its next occurrence."""
    schedule = entries(config)
    last = runs.last_runs(store) if schedule else {}
    return [Line(e.name, e.when, e.target, e.missed, last.get(e.name), e.next_after(now)) for e in schedule]
