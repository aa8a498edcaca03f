"""Two nodes reserve the same row: Galera lets one commit, the other gets 1213 and retries.

``SKIP LOCKED`` and row locks are local to a node, so a worker on node 2 does
not see node 1's lock: both lock and stamp the same job, and Galera settles
it at commit (certification, or the applier aborting node 2's transaction).
The loser's 1213 must be absorbed by the store's retry, from the start of the
transaction, so that a job is never run by both. These run in CI on a
2-node cluster (``.ci/run``), so that the retry path cannot rot.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from dj_daemon.api import Queue
from dj_daemon.store import Filters, Store
from tests.faults.conftest import Ledger, enqueue_timed, report_figure, total_rows, wait_until
from tests.galera.conftest import Cluster

STAMP = "UPDATE delayed_jobs SET locked_at"


def on_first_stamp(store: Store, then: Any) -> list[int]:
    """Call ``then()`` right after the first reservation's stamping UPDATE on ``store``, inside its
    transaction (before its commit); returns the list in which its transactions are counted."""
    begun: list[int] = []
    stamped: list[int] = []

    def after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.startswith(STAMP) and not stamped:
            stamped.append(1)
            then()
    event.listen(store.engine, "after_cursor_execute", after)
    event.listen(store.engine, "begin", lambda conn: begun.append(1))
    return begun


def test_the_loser_of_a_certification_conflict_retries_and_gets_nothing(cluster: Cluster,
                                                                         node_stores: list[Store]) -> None:
    first, second = node_stores[:2]
    Queue(cluster.config(0), first).enqueue("tests.jobs:noop")
    assert wait_until(lambda: second.jobs(), timeout=10)
    won: list[Any] = []
    conflicts_before = cluster.conflicts()
    # node 2 has locked and stamped the job; before it commits, node 1 reserves it too and commits
    tries = on_first_stamp(second, lambda: won.append(first.reserve("node1:1", Filters())))
    lost = second.reserve("node2:1", Filters())
    assert [job.locked_by for job in won[0].jobs] == ["node1:1"]
    assert lost.jobs == [] and len(tries) == 2  # node 2's commit failed, and it tried again
    assert cluster.conflicts() > conflicts_before
    assert [job.locked_by for job in first.jobs()] == ["node1:1"]


def test_a_daemon_per_node_runs_every_job_once(cluster: Cluster, node_stores: list[Store], daemons,
                                               tmp_path: Path) -> None:
    jobs = 3000
    side = str(tmp_path / "runs.txt")
    tokens = enqueue_timed(cluster.config(0), node_stores[0], side, jobs, 0.0, 0.0, seed=18)
    conflicts_before = cluster.conflicts()
    for node in range(len(cluster.urls)):
        daemons(cluster.env(node), "-n", "2")
    assert wait_until(lambda: total_rows(node_stores[0]) == 0, timeout=120, interval=0.2)
    ledger = Ledger.read(side)
    conflicts = cluster.conflicts() - conflicts_before
    report_figure("galera_certification", f"galera x{len(cluster.urls)}", jobs, ledger.performed(tokens),
                  len(ledger.doubled(tokens)), len(ledger.lost(tokens)), None, conflicts=conflicts)
    assert ledger.lost(tokens) == [] and ledger.doubled(tokens) == [] and ledger.unknown(tokens) == set()
    assert conflicts > 0, "no certification conflict happened: the retry path was not exercised"
