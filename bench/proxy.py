"""A counting TCP proxy in front of MariaDB or PostgreSQL: the daemon's own round trips, whatever else
the server serves.

The server's global counters (``SHOW GLOBAL STATUS``, ``pg_stat_database``) count every client
or every transaction; on a shared server that drowns an idle daemon's few queries. Every MySQL
command a client sends starts a packet with sequence id 0 whose first payload byte is the
command (0x03 COM_QUERY, 0x0e COM_PING, 0x01 COM_QUIT). Every PostgreSQL message after the
start-up is a type byte and a length: ``Q`` a simple query (psycopg's BEGIN and COMMIT), ``E``
a statement executed, ``S`` the sync that ends one and waits for the answer. The proxy counts
those, per command, in the client-to-server direction: statements are ``query + execute``,
round trips ``query + sync`` (``statements``, ``round_trips``). On MariaDB it also sorts the
reservation's statements (``kind``): the plain read of candidate ids, the locking read by id,
the one-step locking read it falls back to, the stamp. Its PostgreSQL URL asks for no
TLS (``sslmode=disable``), which the proxy could not read.
"""
from __future__ import annotations

import socket
import threading
from collections import Counter

from sqlalchemy.engine import make_url

#: (words the statement starts with, words it holds, words it lacks) -> its kind, first match wins
KINDS = (
    ("SELECT delayed_jobs.id \nFROM delayed_jobs", "ORDER BY delayed_jobs.priority", "FOR UPDATE", "candidates"),
    ("SELECT delayed_jobs.id,", "FOR UPDATE", "ORDER BY delayed_jobs.priority", "lock_by_id"),
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
PG_NAMES = {b"Q": "query", b"E": "execute", b"S": "sync", b"P": "parse", b"B": "bind", b"D": "describe",
            b"X": "terminate", b"p": "password", b"C": "close", b"H": "flush"}


def statements(counts: Counter[str]) -> int:
    """Statements sent (PostgreSQL: simple queries and executions; MySQL: COM_QUERY and COM_STMT_EXECUTE)."""
    return counts["query"] + counts["execute"] + counts["stmt_execute"]


def round_trips(counts: Counter[str]) -> int:
    """Requests that wait for an answer (PostgreSQL: a simple query or a sync; MySQL: every command)."""
    if "sync" in counts or "terminate" in counts or "parse" in counts or "bind" in counts:
        return counts["query"] + counts["sync"]
    return sum(counts.values())


class CountingProxy:
    def __init__(self, upstream_url: str) -> None:
        url = make_url(upstream_url)
        self.postgresql = url.get_backend_name() == "postgresql"
        self.upstream = (url.host or "127.0.0.1", url.port or (5432 if self.postgresql else 3306))
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        url = url.set(host="127.0.0.1", port=self.port)
        if self.postgresql:
            url = url.update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
        self.url = url.render_as_string(hide_password=False)
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
        started = not self.postgresql  # PostgreSQL's start-up message has no type byte
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if count:  # before forwarding: counted by the time the answer can come back
                    buffer += data
                    buffer, started = self._count(buffer, started)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _count(self, buffer: bytes, started: bool) -> tuple[bytes, bool]:
        """Count the whole messages in ``buffer``; the rest, and whether the start-up is past."""
        while True:
            if not started:  # length, then protocol version (or an SSL/GSS request code)
                if len(buffer) < 8:
                    return buffer, started
                length = int.from_bytes(buffer[:4], "big")
                if len(buffer) < length:
                    return buffer, started
                started = int.from_bytes(buffer[4:8], "big") == 196608  # 3.0: the start-up itself
                buffer = buffer[length:]
            elif self.postgresql:
                if len(buffer) < 5 or len(buffer) < 1 + int.from_bytes(buffer[1:5], "big"):
                    return buffer, started
                with self._lock:
                    self.counts[PG_NAMES.get(buffer[:1], f"msg_{buffer[:1].decode(errors='replace')}")] += 1
                buffer = buffer[1 + int.from_bytes(buffer[1:5], "big"):]
            else:
                if len(buffer) < 4:
                    return buffer, started
                length = int.from_bytes(buffer[:3], "little")
                if len(buffer) < 4 + length:
                    return buffer, started
                if buffer[3] == 0 and length:
                    statement = kind(buffer[5:4 + length]) if buffer[4] == 0x03 else None
                    with self._lock:
                        self.counts[NAMES.get(buffer[4], f"cmd_{buffer[4]:#x}")] += 1
                        if statement:
                            self.kinds[statement] += 1
                buffer = buffer[4 + length:]

    def close(self) -> None:
        self._closed = True
        self.listener.close()
