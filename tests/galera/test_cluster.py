"""The long Galera runs (``make galera-test``, three nodes): 20,000 jobs over every node, the
drain rate by number of nodes with a daemon, and a node killed mid-run.

Each run counts from the jobs' own side channel (``tests.faults.jobs``), as the
fault suite does, and prints its figure (``DJ_FAULTS_REPORT`` collects them for
docs/scale-out.md). Rates are figures, never asserted.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import pytest

from dj_daemon.store import Store, open_store
from tests.conftest import make_db_url
from tests.faults.conftest import Ledger, enqueue_timed, locked_rows, report_figure, total_rows, wait_until
from tests.process.daemon import Daemon
from tests.galera.conftest import Cluster, galera, wsrep_status

JOBS = int(os.environ.get("DJ_GALERA_JOBS", "20000"))
ROUNDS = int(os.environ.get("DJ_GALERA_ROUNDS", "3"))
WORKERS = "2"
DEADLOCK = "Deadlock found when trying to get lock"


class Drained(NamedTuple):
    tokens: list[str]
    rate: float  #: jobs/s from the first start to the last end
    gave_up: int  #: transactions whose retries a conflict outlasted (logged by the worker, which redid them)


def drain(cluster: Cluster, store: Store, daemons: Callable, side: Path, nodes: int, seed: int,
          count: int = JOBS) -> Drained:
    """Enqueue ``count`` no-op jobs, start a daemon on each of the first ``nodes`` nodes, wait for
    the queue to empty."""
    tokens = enqueue_timed(cluster.config(0), store, str(side), count, 0.0, 0.0, seed=seed)
    started = [daemons(cluster.env(node), "-n", WORKERS) for node in range(nodes)]
    assert wait_until(lambda: total_rows(store) == 0, timeout=600, interval=0.2), started[0].log()[-2000:]
    unabsorbed = sum(map(gave_up, started))
    for daemon in started:
        daemon.close()
    ledger = Ledger.read(str(side))
    first = min(at for runs in ledger.starts.values() for _, at in runs)
    return Drained(tokens, count / (ledger.end_times()[-1] - first), unabsorbed)


def gave_up(daemon: Daemon) -> int:
    """Lines where a worker reports a deadlock or certification failure the store's retries did not absorb."""
    return sum(DEADLOCK in line for line in daemon.log().splitlines())


def test_every_node_runs_every_job_once(cluster: Cluster, node_stores: list[Store], daemons, tmp_path: Path) -> None:
    side = tmp_path / "runs.txt"
    before = cluster.conflicts()
    tokens, rate, unabsorbed = drain(cluster, node_stores[0], daemons, side, len(cluster.urls), seed=18)
    ledger = Ledger.read(str(side))
    report_figure("galera_all_nodes", f"galera x{len(cluster.urls)}", JOBS, ledger.performed(tokens),
                  len(ledger.doubled(tokens)), len(ledger.lost(tokens)), None, daemons=len(cluster.urls),
                  workers_each=int(WORKERS), jobs_per_s=round(rate), conflicts=cluster.conflicts() - before,
                  unabsorbed=unabsorbed)
    assert ledger.lost(tokens) == [] and ledger.doubled(tokens) == [] and ledger.unknown(tokens) == set()


@pytest.fixture
def one_server(request: pytest.FixtureRequest, galera_nodes: list[str], tmp_path: Path) -> Iterator[Cluster]:
    """The plain MariaDB server of the other tests (``DJ_TEST_MYSQL_URL``) as a "cluster" whose
    nodes are all that one server: the same daemons on it, for a baseline."""
    database = make_db_url(request, "mysql", tmp_path)
    yield Cluster([next(database)] * len(galera_nodes), tmp_path)
    database.close()  # drops it


def test_drain_rate_by_nodes_with_a_daemon(cluster: Cluster, node_stores: list[Store], one_server: Cluster,
                                           daemons, tmp_path: Path) -> None:
    """Rounds of 1, 2, ... N daemons (2 workers each): one per Galera node, all on node 1 (the
    others their fallbacks), and all on one plain server, interleaved; the median rate of each."""
    server_store = open_store(one_server.config(0, failover=False))
    server_store.create_schema()
    one_writer = Cluster(cluster.urls, cluster.tmp_path, writer=0)
    kinds = (("galera", (cluster, node_stores[0])), ("galera, one writer", (one_writer, node_stores[0])),
             ("one server", (one_server, server_store)))
    setups = {(kind, nodes): pair for nodes in range(1, len(cluster.urls) + 1) for kind, pair in kinds
              if nodes > 1 or kind != "galera, one writer"}  # with one daemon, both Galera layouts are one
    rates: dict[tuple[str, int], list[float]] = {setup: [] for setup in setups}
    conflicts = dict.fromkeys(setups, 0)
    gave_up_total = dict.fromkeys(setups, 0)
    try:
        for round_ in range(ROUNDS):
            for (kind, nodes), (where, store) in setups.items():
                side = tmp_path / f"runs-{round_}-{kind}-{nodes}.txt"
                before = cluster.conflicts()
                tokens, rate, unabsorbed = drain(where, store, daemons, side, nodes, seed=round_, count=JOBS // 2)
                conflicts[kind, nodes] += cluster.conflicts() - before
                gave_up_total[kind, nodes] += unabsorbed
                ledger = Ledger.read(str(side))
                assert ledger.lost(tokens) == [] and ledger.doubled(tokens) == []
                rates[kind, nodes].append(rate)
    finally:
        server_store.dispose()
    for (kind, nodes), measured in rates.items():
        report_figure(f"rate_{nodes}_daemons", kind.replace("galera", f"galera x{len(cluster.urls)}"),
                      JOBS // 2 * ROUNDS, JOBS // 2 * ROUNDS, 0, 0, None, daemons=nodes, workers_each=int(WORKERS),
                      median_jobs_per_s=round(statistics.median(measured)),
                      runs=" ".join(str(round(r)) for r in measured), conflicts=conflicts[kind, nodes],
                      unabsorbed=gave_up_total[kind, nodes])


def test_a_node_killed_mid_run_loses_no_job(cluster: Cluster, node_stores: list[Store], daemons,
                                            tmp_path: Path) -> None:
    """kill -9 of the last node's mariadbd while every node's daemon works: that daemon goes on
    through its failover URLs; the other nodes keep the queue."""
    victim = len(cluster.urls)
    side = str(tmp_path / "runs.txt")
    tokens = enqueue_timed(cluster.config(0), node_stores[0], side, JOBS, 0.0, 0.002, seed=19)
    started = [daemons(cluster.env(node), "-n", WORKERS) for node in range(len(cluster.urls))]
    assert wait_until(lambda: len(Ledger.read(side).end_times()) >= JOBS // 4, timeout=120, interval=0.05)
    try:
        galera("kill", str(victim))
        killed_at = time.monotonic()
        assert wait_until(lambda: total_rows(node_stores[0]) == 0, timeout=300, interval=0.2), \
            started[-1].log()[-3000:]
        recover_s = time.monotonic() - killed_at
        ledger = Ledger.read(side)
        after_end, cut_short = ledger.reruns(tokens)
        victims_workers = set(started[-1].worker_pids())
        ran_after = sum(1 for runs in ledger.ends.values() for pid, at in runs
                        if pid in victims_workers and at > killed_at)
        report_figure("galera_node_killed", f"galera x{len(cluster.urls)}", JOBS, ledger.performed(tokens),
                      len(ledger.doubled(tokens)), len(ledger.lost(tokens)), recover_s, finished_reruns=after_end,
                      cut_mid_job_reruns=cut_short, killed_node=victim,
                      victim_daemon_jobs_after_kill=ran_after,
                      unabsorbed=sum(map(gave_up, started)))
        assert ledger.lost(tokens) == [] and after_end == 0 and ledger.unknown(tokens) == set()
        assert started[-1].proc.poll() is None, started[-1].log()[-3000:]  # its daemon lived on
        assert locked_rows(node_stores[0]) == 0
    finally:
        galera("start", str(len(cluster.urls)))  # the node rejoins (IST or SST) for the next runs
    assert wsrep_status(cluster.urls[-1], "wsrep_local_state_comment") == "Synced"
