"""``python -m bench.pg_paths [N]``: PostgreSQL's enqueue and reservation, each as the store runs it
now (autocommit: one round trip) and as it ran it before (psycopg's transaction: BEGIN, the
statements, COMMIT), alternating, in one process on a database of its own; medians in ms.

The old reservation is ``Store.lock_ready`` in ``Store.transaction`` (the reservation's
transaction with nothing finished and nothing tracked); the old enqueue is the store's own
cursor path with its connection out of autocommit. ``BENCH_POSTGRESQL_URL`` as for the bench;
add ``?options=-csynchronous_commit%3Doff`` to it to take the commits' WAL flushes out.
"""
from __future__ import annotations

import statistics
import sys
import time
from typing import Callable

from dj_daemon.api import Queue
from dj_daemon.store import Filters

from . import jobs
from .backends import PostgreSQL
from .sections import config_for


def main(rounds: int = 100) -> dict[str, float]:
    backend = PostgreSQL()
    try:
        backend.reset()
        new, old = Queue(config_for(backend)), Queue(config_for(backend))
        old.store._cursors.autocommit = False  # the enqueue path as it was
        worker = Queue(config_for(backend)).store
        taken: dict[str, list[float]] = {}

        def timed(name: str, run: Callable[[], object]) -> object:
            t0 = time.perf_counter()
            result = run()
            taken.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
            return result

        def transaction() -> list:
            return worker.transaction(lambda conn: worker.lock_ready(conn, "w:1", Filters(), worker.clock(), 1))

        for i in range(rounds):
            for queue, name in ((new, "enqueue, autocommit"), (old, "enqueue, transaction")):
                time.sleep(0.02)
                timed(name, lambda: queue.enqueue(jobs.noop, "/dev/null", str(i)))
                time.sleep(0.02)
                reserve = (lambda: worker.reserve("w:1", Filters()).jobs) if queue is new else transaction
                found = timed(f"reserve, {'at once' if queue is new else 'transaction'}", reserve)
                worker.complete(*found)  # type: ignore[misc]
        for store in (new.store, old.store, worker):
            store.dispose()
        return {name: round(statistics.median(values[5:]), 3) for name, values in taken.items()}
    finally:
        backend.close()


if __name__ == "__main__":
    for name, ms in main(int(sys.argv[1]) if len(sys.argv) > 1 else 100).items():
        print(f"{name:24} {ms:7.3f} ms")
