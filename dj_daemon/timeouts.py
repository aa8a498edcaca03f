"""The max-run-time deadline around one job, with SIGALRM (as RQ's timeouts).

Only the worker's main thread runs jobs (``Worker`` refuses to be built in
another thread, where SIGALRM cannot be set), so a real-time interval timer is
enough, and it stops pure-Python code and blocking system calls alike. The
handler is installed once per process; each job only arms and disarms the
timer (two system calls), which matters at thousands of jobs a second.
"""
from __future__ import annotations

import _signal
import signal

from .errors import JobTimeout

_limit = [0.0]  # the armed deadline's length, for the message


def _expire(signum: int, frame: object) -> None:
    raise JobTimeout(f"job exceeded max run time of {_limit[0]:g} s")


class deadline:
    """Raise ``JobTimeout`` in the body once ``seconds`` have passed.

    A class, not a generator: entered for every job, where ``contextlib``'s
    wrapper costs several Python calls more.
    """

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        # _signal's getsignal: signal.getsignal wraps the answer in an enum lookup that raises
        # and catches ValueError for every Python handler, per job
        if _signal.getsignal(signal.SIGALRM) is not _expire:
            signal.signal(signal.SIGALRM, _expire)
        _limit[0] = self.seconds
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc_info: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
