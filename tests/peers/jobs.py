"""Jobs for the peer-feature tests (unique jobs, cancelling): each notes what it did in a file."""
from __future__ import annotations

import time
from pathlib import Path

import dj_daemon
from dj_daemon import job


def note(path: str, word: str) -> None:
    with open(path, "a") as out:
        out.write(word + "\n")


def notes(path: str) -> list[str]:
    file = Path(path)
    return file.read_text().split() if file.exists() else []


def noop(n: int = 0) -> None:
    """Nothing: what the unique-key races enqueue."""


@job(unique_key=lambda dataset, **_: f"copy:{dataset}", unique_while="running")
def copy_dataset(dataset: int, path: str = "") -> None:
    """A decorated job whose key is computed from its arguments."""
    if path:
        note(path, f"copy{dataset}")


@job(track="token")
def cooperative(token: str, path: str) -> None:
    """Runs until cancelled, checking the flag as a long job would between steps, then stops."""
    note(path, "started")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if dj_daemon.cancelled():
            note(path, "stopped")
            return
        time.sleep(0.05)
    note(path, "timed-out")


@job(track="token")
def stubborn(token: str, path: str) -> None:
    """Never looks at the flag: only a kill ends it."""
    note(path, "started")
    time.sleep(600)
    note(path, "finished")


def counted_run(path: str, seconds: float) -> None:
    """Counts itself in and out of ``path`` under a lock, noting how many ran at once: what the
    concurrency limit tests read, in the jobs' own words."""
    import fcntl
    import os

    def step(delta: int) -> None:
        with open(path, "a+") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.seek(0)
            lines = out.read().split()
            running = (int(lines[-1].split(":")[1]) if lines else 0) + delta
            out.write(f"{os.getpid()}:{running}:{'in' if delta > 0 else 'out'}\n")
    step(+1)
    time.sleep(seconds)
    step(-1)


def most_at_once(path: str) -> tuple[int, int]:
    """(the most jobs running at once, how many ran) as ``counted_run`` noted them."""
    lines = notes(path)
    return max((int(line.split(":")[1]) for line in lines), default=0), sum(line.endswith(":in") for line in lines)


@job(concurrency_key=lambda account, path, seconds: f"account:{account}", concurrency_limit=2)
def limited_call(account: int, path: str, seconds: float) -> None:
    """An API call at most two of which may run at once per account, on any host."""
    counted_run(path, seconds)
