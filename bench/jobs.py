"""The jobs the benchmark enqueues: each leaves one line in a file, so every run can be counted.

``DJ_ALLOWED_MODULES=bench`` lets the daemon run them; the daemon finds this
package through ``PYTHONPATH`` (the repository root).
"""
from __future__ import annotations

import os
import time


def _append(path: str, line: str) -> None:
    """One ``write`` on an ``O_APPEND`` descriptor: lines from several workers never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def noop(path: str, token: str) -> None:
    """A no-op job: only records that it ran (its token), as ``tests.jobs.record``."""
    _append(path, f"{token}\n")


def stamp(path: str, token: str, enqueued_at: float) -> None:
    """Records its token, when it was enqueued and when it started, for the pickup latency."""
    _append(path, f"{token} {enqueued_at!r} {time.time()!r}\n")
