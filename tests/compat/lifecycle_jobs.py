"""Jobs for the lifecycle and inline-mode tests: each notes what happens to it in ``EVENTS``.

The worker runs in the test's process, so a module-level list sees every hook.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from dj_daemon import job
from dj_daemon.lifecycle import Lifecycle

EVENTS: list[str] = []
#: what each run was given: the hooks' job ids and the arguments the job received
SEEN: list[Any] = []


class Hooked:
    """A perform-object with every delayed_job hook; ``fail`` says where it raises."""

    def __init__(self, fail: str = "", token: str = "") -> None:
        self.fail, self.token = fail, token

    def enqueue(self, job: Any) -> None:
        EVENTS.append("enqueue")

    def before(self, job: Any) -> None:
        EVENTS.append("before")
        if self.fail == "before":
            raise RuntimeError("before hook failed")

    def perform(self) -> None:
        EVENTS.append(f"perform{self.token}")
        if self.fail == "perform":
            raise ValueError("perform failed")

    def success(self, job: Any) -> None:
        EVENTS.append("success")

    def error(self, job: Any, exc: BaseException) -> None:
        EVENTS.append(f"error:{type(exc).__name__}")

    def after(self, job: Any) -> None:
        EVENTS.append("after")

    def failure(self, job: Any) -> None:
        EVENTS.append("failure")


class Urgent:
    """delayed_job's enqueue hook changing the job: priority and run_at are stored."""

    def enqueue(self, job: Any) -> None:
        EVENTS.append(f"enqueue:{job.priority}")
        job.priority = -5
        job.run_at = timedelta(hours=2)
        job.queue = "urgent"

    def perform(self) -> None:
        EVENTS.append("perform")


class Misprioritized(Urgent):
    """An enqueue hook setting a priority the row cannot hold."""

    def enqueue(self, job: Any) -> None:
        job.priority = "high"


class HourLater:
    """A job with its own schedule: retried ``attempts`` hours after each failure."""

    def perform(self) -> None:
        raise ValueError("not yet")

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        SEEN.append((now, attempts))
        return now + timedelta(hours=attempts)


class BadSchedule:
    """A job whose ``reschedule_at`` returns what is no datetime (``value``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def perform(self) -> None:
        raise ValueError("fails")

    def reschedule_at(self, now: datetime, attempts: int) -> Any:
        if self.value == "raise":
            raise KeyError("no schedule")
        return self.value


@job(reschedule_at=lambda now, attempts: (now + timedelta(days=1)).astimezone(timezone(timedelta(hours=2))))
def tomorrow_in_another_zone() -> None:
    """A decorated job whose ``reschedule_at`` answers with an aware datetime in UTC+2."""
    raise ValueError("fails")


def fails() -> None:
    raise ValueError("fails for good")


class Disposable:
    """A job that asks to be destroyed when it fails for good, whatever the setting."""

    destroy_failed_jobs = True
    max_attempts = 1

    def perform(self) -> None:
        raise ValueError("disposable failed")


class Keepsake:
    """A job that asks to be kept when it fails for good, whatever the setting."""

    destroy_failed_jobs = False
    max_attempts = 1

    def perform(self) -> None:
        raise ValueError("keepsake failed")


@job(destroy_failed_jobs=True, max_attempts=1)
def disposable_function() -> None:
    raise ValueError("disposable function failed")


@job(track="dataset_id", gate="none", max_attempts=1)
def tracked_failure(dataset_id: int) -> None:
    raise ValueError(f"dataset {dataset_id} failed")


def noted(token: str) -> None:
    EVENTS.append(f"perform:{token}")


def echo(values: Any) -> None:
    """Notes the arguments as the job got them (inline: after the JSON round trip, as a worker)."""
    SEEN.append(values)


INSTALLS: list[int] = []


def plugin(lifecycle: Lifecycle) -> None:
    """A plugin for the ``plugins`` setting: notes each job's perform event."""
    INSTALLS.append(1)
    lifecycle.before("perform", lambda worker, job: EVENTS.append(f"plugin:{job.id}"))
