"""A counting TCP proxy in front of MariaDB: the daemon's own round trips, whatever else the server serves.

The server's global counters (``SHOW GLOBAL STATUS``) count every client;
on a shared server that drowns an idle daemon's few queries. Every MySQL
command a client sends starts a packet with sequence id 0 whose first
payload byte is the command (0x03 COM_QUERY, 0x0e COM_PING, 0x01 COM_QUIT);
the proxy counts those, per command, in the client-to-server direction, and
sorts the reservation's statements (``kind``): the plain read of candidate ids,
the locking read by id, the one-step locking read it falls back to, the stamp.
"""
from __future__ import annotations

import socket
import threading
from collections import Counter

from sqlalchemy.engine import make_url

#: (words the statement starts with, words it holds, words it lacks) -> its kind, first match wins
KINDS = (
    ("SELECT delayed_jobs.id \nFROM delayed_jobs", "ORDER BY", "FOR UPDATE", "candidates"),
    ("SELECT delayed_jobs.id,", "FOR UPDATE", "ORDER BY", "lock_by_id"),
    ("SELECT delayed_jobs.id,", "FOR UPDATE", "", "lock_one_step"),
    ("UPDATE delayed_jobs SET locked_at", "", "", "stamp"),
)


def kind(statement: bytes) -> str | None:
    """The reservation statement ``statement`` is, if any (see ``KINDS``)."""
    text = statement.decode("utf-8", "replace")
    for start, holds, lacks, name in KINDS:
        if text.startswith(start) and holds in text and not (lacks and lacks in text):
            return name
    return None


NAMES = {0x03: "query", 0x0E: "ping", 0x01: "quit", 0x02: "init_db", 0x11: "change_user",
         0x16: "stmt_prepare", 0x17: "stmt_execute"}


class CountingProxy:
    def __init__(self, upstream_url: str) -> None:
        url = make_url(upstream_url)
        self.upstream = (url.host or "127.0.0.1", url.port or 3306)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = url.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)
        self.counts: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()  # reservation statements, by ``kind``
        self.connections = 0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def kinds_snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.kinds)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        buffer = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
                if count:
                    buffer += data
                    while len(buffer) >= 4:
                        length = int.from_bytes(buffer[:3], "little")
                        if len(buffer) < 4 + length:
                            break
                        if buffer[3] == 0 and length:
                            statement = kind(buffer[5:4 + length]) if buffer[4] == 0x03 else None
                            with self._lock:
                                self.counts[NAMES.get(buffer[4], f"cmd_{buffer[4]:#x}")] += 1
                                if statement:
                                    self.kinds[statement] += 1
                        buffer = buffer[4 + length:]
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
