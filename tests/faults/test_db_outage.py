"""Experiment 3: the database goes away for 10 s under the daemon's feet (MariaDB behind a TCP relay).

The daemon reaches MariaDB through ``Relay``, a small thread-based TCP
forwarder in this process. ``cut()`` shuts down every open connection and
closes each new one at once; ``restore()`` forwards again. ``freeze()`` makes
it a black hole instead, as a frozen server looks from the client: every
connection stays open and nothing passes any more, new ones are accepted and
never answered.
"""
from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import SERVERS
from tests.faults.conftest import (Ledger, dialect_of, enqueue_timed, locked_rows, report_figure,
                                   rows_with_errors, total_rows, wait_until)

JOBS = 1000
WORKERS = 2
OUTAGE_S = 10.0


class Relay:
    """127.0.0.1:<port> -> ``target``, with a switch that cuts the line."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.down = threading.Event()
        self.frozen = threading.Event()
        self.closed = False
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.refused = 0
        self.accepted = 0
        self.unanswered = 0  # connections accepted while frozen
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                self.refused += 1
                client.close()
                continue
            if self.frozen.is_set():
                self.unanswered += 1
                with self.lock:
                    self.open.add(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.accepted += 1
            with self.lock:
                self.open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data or self.down.is_set():
                    break
                if not self.frozen.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._kill(sock)

    def _kill(self, sock: socket.socket) -> None:
        with self.lock:
            self.open.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self) -> None:
        self.down.set()
        with self.lock:
            victims = list(self.open)
        for sock in victims:
            self._kill(sock)

    def restore(self) -> None:
        self.down.clear()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        """Forward again, on new connections: the frozen ones lost their bytes, so they are cut."""
        self.cut()
        self.frozen.clear()
        self.restore()

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def relay(config):
    """A relay to the test database's server (MariaDB or PostgreSQL)."""
    url = make_url(config.url)
    relay = Relay((url.host or "127.0.0.1", url.port or {"postgresql": 5432}.get(url.get_backend_name(), 3306)))
    yield relay
    relay.close()


@pytest.mark.slow
@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_ten_second_outage_is_survived_with_bounded_logs(config, store, subprocess_env, daemons, relay,
                                                         tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    tokens = enqueue_timed(config, store, side, JOBS, 0.005, 0.020, seed=4)
    relayed = make_url(config.url).set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    daemon = daemons({**subprocess_env, "DJ_DATABASE_URL": relayed}, "-n", str(WORKERS))
    daemon.wait_ready()
    workers_before = daemon.worker_pids()
    assert wait_until(lambda: len(Ledger.read(side).end_times()) >= 150, timeout=30, interval=0.02)
    cut_at = time.monotonic()
    relay.cut()
    exited_during_outage = None
    while time.monotonic() - cut_at < OUTAGE_S:
        if daemon.proc.poll() is not None:
            exited_during_outage = daemon.proc.returncode
            break
        time.sleep(0.1)
    restored_at = time.monotonic()
    relay.restore()
    assert exited_during_outage is None, f"daemon exited ({exited_during_outage}) during the outage:\n{daemon.log()}"
    drained = wait_until(lambda: total_rows(store) == 0, timeout=90, interval=0.1)
    ledger = Ledger.read(side)
    in_flight = [t for t, runs in ledger.starts.items()
                 if any(s <= cut_at for _, s in runs) and not any(e <= cut_at for _, e in ledger.ends.get(t, []))]
    after = [t for t in ledger.end_times() if t > restored_at]
    doubled, lost = ledger.doubled(tokens), ledger.lost(tokens)
    log = daemon.log()
    retry_lines = [line for line in log.splitlines() if "retrying" in line]
    outage_status = [m for t, m in daemon.messages
                     if cut_at <= t <= restored_at + 0.5 and m.startswith("STATUS=") and "database unreachable" in m]
    report_figure("db_outage_10s", dialect_of(store), JOBS, ledger.performed(tokens), len(doubled), len(lost),
                  (after[0] - restored_at) if after else None, workers=WORKERS, outage_s=OUTAGE_S,
                  in_flight_at_cut=len(in_flight), retrying_lines=len(retry_lines),
                  database_log_lines=sum(1 for line in log.splitlines() if "database" in line),
                  status_unreachable_msgs=len(outage_status), refused_connects=relay.refused,
                  workers_replaced=sorted(set(workers_before) - set(daemon.worker_pids())) != [])
    assert daemon.proc.poll() is None, log[-3000:]
    assert "Traceback" not in log and "crashed" not in log, log[-5000:]
    assert daemon.worker_pids() == workers_before, "a worker died during the outage"
    assert 1 <= len(retry_lines) <= 1 + WORKERS, "\n".join(retry_lines)
    assert outage_status, [m for _, m in daemon.messages if m.startswith("STATUS=")][-10:]
    assert drained, f"{total_rows(store)} rows left"
    assert not lost, f"{len(lost)} jobs never completed, e.g. {lost[:5]}"
    assert len(doubled) <= WORKERS and set(doubled) <= set(in_flight), (doubled, in_flight)
    assert locked_rows(store) == 0 and rows_with_errors(store) == []
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
