"""A plugin for the ``plugins`` setting (so installed in the daemon's workers only) that holds a
worker just after one of its transactions ends, while the file ``hold`` exists in the folder
``DJ_TEST_HOLD_DIR`` names: it writes ``held`` there, then waits for ``hold`` to go.

A worker so held after a reservation that found nothing has read the queue and is not yet
waiting: what the supervisor hears meanwhile is what a reservation racing an enqueue misses.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool


def plugin(lifecycle: Any) -> None:
    folder = Path(os.environ["DJ_TEST_HOLD_DIR"])

    def checkin(dbapi_connection: Any, record: Any) -> None:  # the transaction has ended
        if (folder / "hold").exists():
            (folder / "held").write_text(str(os.getpid()))
            while (folder / "hold").exists():
                time.sleep(0.01)

    event.listen(Pool, "checkin", checkin)
