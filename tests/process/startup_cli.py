"""``python -m tests.process.startup_cli ARGS``: the ``delayed_job`` CLI, its supervisor's reads of
cancel requests logged.

Each ``Store.requests_of`` call appends the wall time (``time.time()``) to the file named by
``DJ_TEST_CANCEL_LOG``. Nothing in ``dj_daemon`` is edited: the method is wrapped before the CLI
runs (as ``tests.process.counted_cli`` does for the idle poll).
"""
from __future__ import annotations

import os
import time

from dj_daemon.store import Store
from tests.jobs import record


def install(path: str) -> None:
    original = Store.requests_of

    def requests_of(self: Store, hostname: str) -> object:
        record(path, repr(time.time()))
        return original(self, hostname)

    Store.requests_of = requests_of  # type: ignore[method-assign]


if __name__ == "__main__":
    install(os.environ["DJ_TEST_CANCEL_LOG"])
    from dj_daemon.cli import main

    main()
