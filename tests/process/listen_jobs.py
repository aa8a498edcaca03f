"""A job for the LISTEN tests: it records when it was enqueued and when it started."""
from __future__ import annotations

import time

from tests.jobs import record


def stamp(path: str, enqueued: float) -> None:
    """One line ``enqueued started`` (Unix seconds): their difference is the pickup time."""
    record(path, f"{enqueued}:{time.time()}")
