"""``python -m tests.process.startup_cli ARGS``: the ``delayed_job`` CLI, its supervisor's reads of
cancel requests logged.

Each ``Store.requests_of`` call appends ``read:`` and the wall time (``time.time()``) to the file
named by ``DJ_TEST_CANCEL_LOG``, and the supervisor's construction ``start:`` and its time. Nothing
in ``dj_daemon`` is edited: the methods are wrapped before the CLI runs (as
``tests.process.counted_cli`` does for the idle poll).
"""
from __future__ import annotations

import os
import time

from dj_daemon.store import Store
from dj_daemon.supervisor import Supervisor
from tests.jobs import record


def install(path: str) -> None:
    original, constructor = Store.requests_of, Supervisor.__init__

    def requests_of(self: Store, hostname: str) -> object:
        record(path, f"read:{time.time()!r}")
        return original(self, hostname)

    def init(self: Supervisor, *args: object, **kwargs: object) -> None:
        record(path, f"start:{time.time()!r}")
        constructor(self, *args, **kwargs)

    Store.requests_of = requests_of  # type: ignore[method-assign]
    Supervisor.__init__ = init  # type: ignore[method-assign]


if __name__ == "__main__":
    install(os.environ["DJ_TEST_CANCEL_LOG"])
    from dj_daemon.cli import main

    main()
