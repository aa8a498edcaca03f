"""Jobs for the fault experiments; each run leaves ``start``/``end`` lines in its own side channel.

A line is ``<start|end> <token> <pid> <monotonic seconds>``, appended with one
``O_APPEND`` write so that concurrent workers never interleave within a line.
``time.monotonic`` is CLOCK_MONOTONIC, shared by every process on the host, so
the test can compare these stamps with its own.
"""
from __future__ import annotations

import os
import time

from tests.jobs import record as note  # one O_APPEND write per line


def timed(path: str, token: str, seconds: float) -> None:
    """Record the start, sleep ``seconds``, record the end."""
    note(path, f"start {token} {os.getpid()} {time.monotonic():.6f}")
    time.sleep(seconds)
    note(path, f"end {token} {os.getpid()} {time.monotonic():.6f}")



def durable(path: str, token: str, seconds: float) -> None:
    """``timed``, for a job class that asks that its row go as soon as it ends (``commit_each``)."""
    timed(path, token, seconds)


durable.commit_each = True  # type: ignore[attr-defined]
