"""The max-run-time deadline around one job, with SIGALRM (as RQ's timeouts).

Only the worker's main thread runs jobs, so a real-time interval timer is
enough, and it stops pure-Python code and blocking system calls alike.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator

from .errors import JobTimeout


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``JobTimeout`` in the body once ``seconds`` have passed."""

    def expire(signum: int, frame: object) -> None:
        raise JobTimeout(f"job exceeded max run time of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
