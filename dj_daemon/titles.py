"""Process titles as ``ps`` shows them: ``delayed_job: supervisor``, ``delayed_job: worker 2 [mail] job 123``.

The daemon's entry point turns titles on (``supervisor``) and its forked
workers inherit that; in any other process (``delayed_job work``, an
application running a ``Worker``) every call here does nothing, so its own
title stays. A title belongs to the process, one per process: hence module
state, set once by the daemon's entry point.

With the ``[titles]`` extra (setproctitle) the whole command line shown by
``ps`` changes, and with it the kernel's 15-byte command name (``ps -o comm``,
top). Without it only that command name is set, through prctl, to what
setproctitle would set (so ``comm`` reads the same with or without the
extra), and nothing where there is no prctl.

A worker's title changes with each job (``busy``), on the hot path: with
setproctitle that is about 1 µs a job (formatting included, measured with
timeit); the prctl fallback calls the kernel only when the 15 bytes change.
"""
from __future__ import annotations

from typing import Callable

PR_SET_NAME = 15  #: prctl option, from <linux/prctl.h>
COMM_BYTES = 15   #: the kernel keeps 16 bytes, the last one a NUL


def _comm_setter() -> Callable[[str], None]:
    """Set the kernel's command name to a title's first 15 bytes, as setproctitle does too; a no-op
    where libc has no prctl."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda title: None
    current = [b""]

    def set_comm(title: str) -> None:
        name = title.encode(errors="replace")[:COMM_BYTES]
        if name != current[0]:
            current[0] = name
            prctl(PR_SET_NAME, name, 0, 0, 0)

    return set_comm


try:
    from setproctitle import setproctitle as _set_title
except ImportError:
    _set_title = _comm_setter()

_lead: str | None = None  #: "[prefix ]delayed_job:"; None: titles are off in this process
_head: str | None = None  #: a worker's title without its job


def supervisor(prefix: str | None) -> None:
    """Turn titles on for this process and its forks (``-p``/``--prefix`` goes first) and name it."""
    global _lead
    _lead = f"{prefix} delayed_job:" if prefix else "delayed_job:"
    _set_title(f"{_lead} supervisor")


def worker(number: int, queues: str) -> None:
    """In a forked worker: ``delayed_job: worker 2 [mail] idle`` until it takes a job."""
    global _head
    if _lead is not None:
        _head = f"{_lead} worker {number} [{queues}]"
        idle()


def busy(job_id: int) -> None:
    """The worker runs ``job_id`` now (called where it tells the supervisor so)."""
    if _head is not None:
        _set_title(f"{_head} job {job_id}")


def idle() -> None:
    """The worker waits for work."""
    if _head is not None:
        _set_title(f"{_head} idle")
