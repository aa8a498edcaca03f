"""``python -m tests.process.counted_cli ARGS``: the ``delayed_job`` CLI, its idle polls counted.

Each ``Store.has_ready`` call (the supervisor's idle poll) appends a line ``<pid> <monotonic time>``
to the file named by ``DJ_TEST_POLL_LOG``. Nothing in ``dj_daemon`` is edited: the method is
wrapped before the CLI runs (as ``tests.faults.instrumented_cli`` does).
"""
from __future__ import annotations

import os
import time

from dj_daemon.store import Store
from tests.jobs import record


def install(path: str) -> None:
    original = Store.has_ready

    def has_ready(self: Store, filters: object) -> bool:
        record(path, f"{os.getpid()} {time.monotonic()}")
        return original(self, filters)

    Store.has_ready = has_ready  # type: ignore[method-assign]


if __name__ == "__main__":
    install(os.environ["DJ_TEST_POLL_LOG"])
    from dj_daemon.cli import main

    main()
