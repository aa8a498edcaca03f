"""Job functions and classes the tests enqueue; each leaves a side effect to count."""
from __future__ import annotations

import functools
import os
import signal
import time
from typing import Any

from sqlalchemy import Integer, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from dj_daemon import job


def record(path: str, token: Any) -> None:
    """Append one line: the test counts runs from this file (O_APPEND writes are atomic)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{token}\n".encode())
    finally:
        os.close(fd)


def runs(path: str) -> list[str]:
    """The tokens recorded so far."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().split()
    except FileNotFoundError:
        return []


def noop() -> None:
    """Does nothing; for counting throughput."""


def always_fails(path: str) -> None:
    record(path, "ran")
    raise ValueError("this job always fails")


def fails_until_file_exists(path: str, flag: str) -> None:
    record(path, "ran")
    if not os.path.exists(flag):
        raise RuntimeError("flag file missing")


def sleep_then_record(path: str, seconds: float, token: str = "done") -> None:
    record(path, "started")
    time.sleep(seconds)
    record(path, token)


def turn_state(path: str, folder: str, seconds: float = 0.0) -> None:
    """After ``seconds``, record whether the host's only turn (``dj_daemon.turns``, kept in
    ``folder``) is held by someone, this job's own worker included: a fresh lock file opened
    here is another holder to the kernel."""
    from dj_daemon.turns import Turns

    time.sleep(seconds)
    turns = Turns(folder, 1)
    try:
        turn = turns.take(lambda: True)  # no wait
        record(path, "held" if turn is None else "free")
        if turn is not None:
            turn.give()
    finally:
        turns.close()


@job(queue="mail", priority=3, max_attempts=2, backoff=0)
def decorated(path: str, token: str) -> str:
    record(path, token)
    return token


@job(max_attempts=2, backoff=0)
def flaky(path: str) -> None:
    always_fails(path)


EVENTS: list[str] = []


def remember(name: str) -> Any:
    return lambda *args: EVENTS.append(name)


@job(before=remember("before"), after=remember("after"), success=remember("success"),
     error=remember("error"), failure=remember("failure"), max_attempts=1)
def hooked(fail: bool) -> None:
    EVENTS.append("perform")
    if fail:
        raise RuntimeError("hooked job failed")


class Newsletter:
    """A perform-object; its attributes travel as JSON."""

    max_attempts = 4
    queue = "newsletters"

    def __init__(self, path: str, text: str, emails: list[str]) -> None:
        self.path, self.text, self.emails = path, text, emails

    def perform(self) -> None:
        for email in self.emails:
            record(self.path, f"{email}:{self.text}")


class Base(DeclarativeBase):
    pass


class Photo(Base):
    """An ORM record for the "special smarts" tests."""

    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    uploaded: Mapped[str] = mapped_column(String(100), default="no")

    def upload(self, size: int) -> None:
        self.uploaded = f"yes:{size}"


def caption(photo: Photo, path: str) -> None:
    record(path, photo.title)


@functools.lru_cache(maxsize=None)
def _photo_sessions(url: str) -> sessionmaker:
    return sessionmaker(create_engine(url))


def photo_session() -> Any:
    """The session factory the worker loads through (``session_factory = tests.jobs:photo_session``)."""
    return _photo_sessions(os.environ["DJ_TEST_PHOTO_URL"])()


def sleep_until_flag(path: str, flag: str, seconds: float) -> None:
    """A long job (``seconds``) that a test may cut short by creating ``flag``."""
    record(path, "started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(flag):
        time.sleep(0.05)
    record(path, "done")


def rendezvous(path: str, parties: int, timeout: float = 60.0) -> None:
    """Records this worker's pid, then waits until ``parties`` workers have: a fast worker cannot
    drain the queue alone before the others have started."""
    record(path, os.getpid())
    deadline = time.monotonic() + timeout
    while len(set(runs(path))) < parties and time.monotonic() < deadline:
        time.sleep(0.01)


def record_pid(path: str) -> None:
    """Record which worker process ran the job."""
    record(path, os.getpid())


@job(track="dataset_id", gate="defer", queue="replication")
def replicate(path: str, dataset_id: int, seconds: float = 0.0) -> None:
    """A deferrable tracked job (a replication copy): parked while defer_jobs.txt exists."""
    record(path, f"start-{dataset_id}")
    time.sleep(seconds)
    record(path, f"end-{dataset_id}")


@job(track="dataset_id", gate="hold", queue="submissions")
def submit(path: str, dataset_id: int, seconds: float = 0.0) -> None:
    """A submission (hold gate): rejected while hold-submissions.txt exists."""
    record(path, f"start-{dataset_id}")
    time.sleep(seconds)
    record(path, f"end-{dataset_id}")


@job(track="dataset_id", gate="none")
def ordered_step(path: str, dataset_id: int, step: int, seconds: float) -> None:
    """A tracked job without a gate; steps of one dataset must run in order, one at a time."""
    record(path, f"start-{step}")
    time.sleep(seconds)
    record(path, f"end-{step}")


class ReplicationCopy:
    """A tracked perform-object: identifier from its attribute."""

    track = "dataset_id"
    gate = "defer"

    def __init__(self, path: str, dataset_id: int) -> None:
        self.path, self.dataset_id = path, dataset_id

    def perform(self) -> None:
        record(self.path, f"copy-{self.dataset_id}")


@job(track="dataset_id", gate="defer")
def tracked_until_flag(path: str, dataset_id: int, flag: str) -> None:
    """A long tracked job that ends when ``flag`` exists (at most 60 s)."""
    sleep_until_flag(path, flag, 60)


def kill_own_worker_once(path: str, flag: str) -> None:
    """Dies with its worker (SIGKILL) the first time, succeeds the second."""
    record(path, "kill-job")
    if not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getpid(), 9)


@job(track="dataset_id", gate="defer", max_attempts=1)
def tracked_fails_until_flag(path: str, dataset_id: int, flag: str) -> None:
    """A tracked copy that ends in ``error`` at its first failure, and succeeds once ``flag`` exists."""
    fails_until_file_exists(path, flag)


def ends_its_worker(path: str, how: str) -> None:
    """A poison job: records a run, then ends the process running it (``exit``, or a signal name)."""
    record(path, how)
    if how == "exit":
        os._exit(3)
    os.kill(os.getpid(), getattr(signal, how))
