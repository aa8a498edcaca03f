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
