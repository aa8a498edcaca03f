"""What enqueue does with a job before storing it, or instead: delayed_job's ``enqueue_job``.

Under the ``enqueue`` plugin callbacks (see ``lifecycle``), the job's own
``enqueue(job)`` hook runs first, and may change the job's ``queue``,
``priority`` and ``run_at``, which are then stored; then the job is stored, or,
when ``delay_jobs`` says not to delay it (inline mode, for tests), run at once
in this process and not stored at all.

Inline, a job runs as a worker would run it (``run_inline``): its handler is
decoded under ``allowed_modules`` (so a test catches what a worker would
refuse), records are loaded through ``session_factory``, and it goes through
its ``before``, ``success`` or ``error``, and ``after`` hooks and the
``invoke_job`` callbacks. Its exception reaches the enqueuing call, with no
retry and no ``failure`` hook, as delayed_job's ``invoke_job``; there is no
``max_run_time`` deadline.

Jobs that need none of this (no hook, no callback, ``delay_jobs`` true) are
stored as they are, at no cost (``plain``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from . import payload
from .config import Config
from .errors import EnqueueError
from .job import Job, NewJob, utcnow
from .lifecycle import LIFECYCLE, invoke_job
from .records import RecordLoader


@dataclass
class Enqueuing:
    """A job being enqueued, as its ``enqueue`` hook, the ``enqueue`` callbacks and a
    ``delay_jobs`` callable see it. ``queue``, ``priority`` and ``run_at`` (a datetime, naive
    meaning UTC, or a timedelta from now) may be changed. ``id`` is the stored row's once it is
    inserted: None for a job run inline, and, in ``enqueue_many``, until the one INSERT of all."""

    name: str
    queue: str | None
    priority: int
    run_at: datetime | timedelta | None
    handler: str = field(repr=False)
    id: int | None = None

    def stored(self, new: NewJob, when: Callable[[Any], datetime | None]) -> NewJob:
        """``new`` with this job's values, checked: each wrong one is a one-line ``EnqueueError``."""
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise EnqueueError(f"job {self.name}: priority must be an integer, not {self.priority!r}")
        if self.queue is not None and not isinstance(self.queue, str):
            raise EnqueueError(f"job {self.name}: queue must be a name or None, not {self.queue!r}")
        run_at = when(self.run_at)
        if run_at is not None and not isinstance(run_at, datetime):
            raise EnqueueError(f"job {self.name}: run_at must be a datetime or a timedelta, not {self.run_at!r}")
        return replace(new, queue=self.queue, priority=self.priority, run_at=run_at)


def plain(jobs: list[NewJob], config: Config) -> bool:
    """True when every job is stored as it is: no ``enqueue`` hook or callback, none run inline."""
    if config.delay_jobs is not True or "enqueue" in LIFECYCLE.hooked:
        return False
    for new in jobs:
        if callable(getattr(new.owner, "enqueue", None)):
            return False
    return True


def enqueue_each(jobs: list[NewJob], config: Config, store: Callable[[list[NewJob]], list[int]],
                 when: Callable[[Any], datetime | None]) -> list[int | None]:
    """Each job through ``enqueue_job``; a single job is stored inside its ``enqueue`` event, as in
    delayed_job, many are stored together after theirs (one INSERT, as ``enqueue_many`` promises).
    Returns what ``store`` does, a job run inline having no id."""
    if len(jobs) == 1:
        return [enqueue_job(jobs[0], config, lambda new: store([new])[0], when)]
    staged: list[NewJob] = []
    for new in jobs:
        enqueue_job(new, config, staged.append, when)
    return list(store(staged)) if staged else []


def enqueue_job(new: NewJob, config: Config, store: Callable[[NewJob], Any],
                when: Callable[[Any], datetime | None]) -> int | None:
    """The ``enqueue`` hook, then ``store`` the job or run it inline, under the ``enqueue`` callbacks.
    The hook's exception, and an inline job's, reach the caller: nothing is stored."""
    job = Enqueuing(new.name, new.queue, new.priority, new.run_at, new.handler)

    def step() -> int | None:
        hook = getattr(new.owner, "enqueue", None)
        if callable(hook):
            hook(job)
        final = job.stored(new, when)
        if delays(config, job):
            stored = store(final)
            job.id = stored if isinstance(stored, int) else None
        else:
            run_inline(final, config)
        return job.id
    if "enqueue" in LIFECYCLE.hooked:
        return LIFECYCLE.run("enqueue", step, job)
    return step()


def delays(config: Config, job: Enqueuing) -> bool:
    """``delay_jobs``: true stores the job, false runs it inline, a callable decides per job."""
    decide = config.delay_jobs
    return bool(decide(job)) if callable(decide) else decide


def run_inline(new: NewJob, config: Config) -> None:
    """Run a job now, as a worker would (see the module's docstring), with no row behind it:
    the ``Job`` its hooks get has no id, and no attempt before this one."""
    factory = payload.resolve(config.session_factory, ("*",)) if config.session_factory else None
    loader = RecordLoader(factory)
    try:
        call = payload.decode(new.handler, config.allowed_modules, loader)
    except BaseException:
        loader.finish(False)
        raise
    now = utcnow()
    job = Job(None, new.priority, 0, new.handler, new.queue, new.run_at or now,  # type: ignore[arg-type]
              created_at=now)
    invoke_job(call, job, loader)
