"""A Galera cluster's nodes for the tests of this folder, and a fresh database on it per test.

The cluster is started outside pytest by ``scripts/galera.sh`` (``make galera``,
``make galera-test``, or ``.ci/run`` with two nodes), which passes its nodes' server
URLs as ``DJ_TEST_GALERA_URLS`` (comma-separated, node 1 first). Without it every
test here is skipped, saying so: ``make test`` does not start a cluster. With
``DJ_TEST_REQUIRE_GALERA=1`` (CI), a node that does not answer is a failure.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dj_daemon.config import Config
from dj_daemon.errors import DatabaseError
from dj_daemon.store import Store, open_store
from tests.conftest import ROOT, _server_error, config_for, env_for
from tests.faults.conftest import daemons  # noqa: F401  (a fixture, for the daemons per node)

NODE_URLS = [url.strip() for url in os.environ.get("DJ_TEST_GALERA_URLS", "").split(",") if url.strip()]
REQUIRE_GALERA = os.environ.get("DJ_TEST_REQUIRE_GALERA") == "1"
if REQUIRE_GALERA and not NODE_URLS:
    raise pytest.UsageError("DJ_TEST_REQUIRE_GALERA=1 needs DJ_TEST_GALERA_URLS (make galera-test sets it)")
SCRIPT = ROOT / "scripts" / "galera.sh"
#: wsrep counters that say a transaction lost to a write set of another node: at certification,
#: or aborted by the applier (brute force) while it held a lock the write set needed.
CONFLICTS = ("wsrep_local_cert_failures", "wsrep_local_bf_aborts")


@dataclass
class Cluster:
    """The nodes' URLs on one fresh database (node 1 first), and what a daemon per node needs."""

    urls: list[str]
    tmp_path: Path
    writer: int | None = None  #: the node every daemon writes to, the others as fallbacks; None: each its own

    def config(self, node: int, failover: bool = True) -> Config:
        """The config of node ``node``'s daemon (0-based): its node's URL (or the writer's) first,
        then the others in turn."""
        first = node if self.writer is None else self.writer
        others = tuple(self.urls[first + 1:] + self.urls[:first]) if failover else ()
        return config_for(self.urls[first], self.tmp_path).replace(failover_urls=others, hostname=f"node{node + 1}")

    def env(self, node: int, failover: bool = True) -> dict[str, str]:
        """A ``delayed_job`` subprocess's environment for node ``node``'s daemon."""
        config = self.config(node, failover)
        env = env_for(config)
        env.update(DJ_HOSTNAME=config.hostname, DJ_PIDFILE=str(self.tmp_path / f"node{node + 1}.pid"),
                   DJ_DATABASE_FAILOVER_URLS=",".join(config.failover_urls))
        return env

    def conflicts(self) -> int:
        """Certification failures and brute-force aborts, summed over the nodes that answer."""
        total = 0
        for url in self.urls:
            if _server_error(url) is None:
                total += sum(int(wsrep_status(url, name) or 0) for name in CONFLICTS)
        return total


def wsrep_status(url: str, name: str) -> str:
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SHOW GLOBAL STATUS LIKE :name"), {"name": name}).first()
    finally:
        engine.dispose()
    return str(row[1]) if row else ""


def galera(*args: str) -> str:
    """Run ``scripts/galera.sh`` (as the harness that started the cluster, same ``GALERA_*``)."""
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def galera_nodes() -> list[str]:
    """The nodes' server URLs, each answering and synced; or a skip (a failure in CI) saying why not."""
    if not NODE_URLS:
        pytest.skip("no Galera cluster: `make galera-test` starts one (DJ_TEST_GALERA_URLS)")
    for url in NODE_URLS:
        error = _server_error(url)
        if error is None and wsrep_status(url, "wsrep_ready") != "ON":
            error = "not ready"
        if error is not None:
            shown = make_url(url).render_as_string(hide_password=True)
            message = f"Galera node {shown}: {error}"
            if REQUIRE_GALERA:
                pytest.fail(f"{message} (DJ_TEST_REQUIRE_GALERA=1)")
            pytest.skip(message)
    return NODE_URLS


@pytest.fixture
def cluster(galera_nodes: list[str], tmp_path: Path) -> Iterator[Cluster]:
    """A fresh database on the cluster (created on node 1, replicated), dropped afterwards."""
    name = f"dj_galera_{uuid.uuid4().hex[:12]}"
    admin = create_engine(galera_nodes[0], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield Cluster([make_url(url).set(database=name).render_as_string(hide_password=False)
                       for url in galera_nodes], tmp_path)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def node_stores(cluster: Cluster) -> Iterator[list[Store]]:
    """One store per node, each on its node only (no failover), with the schema in place."""
    stores = [open_store(cluster.config(node, failover=False)) for node in range(len(cluster.urls))]
    stores[0].create_schema()
    wait_for_tables(stores)
    yield stores
    for store in stores:
        store.dispose()


def wait_for_tables(stores: list[Store], timeout: float = 30.0) -> None:
    """DDL replicates in total order, but a node applies it a moment later: wait until each sees it."""
    deadline = time.monotonic() + timeout
    for store in stores:
        while True:
            try:
                if not store.missing_indexes():
                    store.counts()
                    break
            except DatabaseError:
                pass
            assert time.monotonic() < deadline, f"schema not replicated to {store.safe_url}"
            time.sleep(0.1)
