"""Same-host wake-ups: an enqueue nudges the local daemon so an idle worker starts at once.

A datagram to an abstract Unix socket (Linux; no file, no permissions to
manage) named after the database, so any process on this host that
enqueues into that database reaches the daemon working it. A nudge carries
no data and is only a hint: when it is lost, the supervisor's poll finds the
job a moment later. Other hosts always rely on that poll.
"""
from __future__ import annotations

import hashlib
import socket
import time

from .config import Config


def address(config: Config) -> str:
    """The abstract socket name for this config's database: its backend and name (or file).

    Host and port are left out on purpose: an application may reach the
    server as ``localhost`` and the daemon as ``127.0.0.1``, or through a
    proxy. Two servers with a database of the same name on one host share
    nudges, which costs nothing but an extra look.
    """
    from sqlalchemy.engine import make_url

    url = make_url(config.url)
    key = f"{url.get_backend_name()}/{url.database or ''}"
    return f"\0dj-daemon/{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def listen(config: Config) -> socket.socket | None:
    """The supervisor's receiving socket, or None if another daemon here already has it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(address(config))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock


class Nudger:
    """Sends nudges from an application process; never blocks, never raises.

    When no daemon listens on this host (an application host of its own, or a
    daemon stopped), the next nudge waits ``poll_interval``: a refused send
    cost 3 µs per enqueue (4% of one on SQLite), and a daemon started
    meanwhile finds the jobs within that time by its poll anyway.
    """

    def __init__(self, config: Config) -> None:
        self._address = address(config)
        self._socket: socket.socket | None = None
        self._quiet = config.poll_interval
        self._quiet_until = 0.0

    def __call__(self) -> None:
        if self._quiet_until and time.monotonic() < self._quiet_until:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(b"!", self._address)
            self._quiet_until = 0.0
        except ConnectionRefusedError:
            self._quiet_until = time.monotonic() + self._quiet  # nobody listens here
        except OSError:
            pass  # its buffer is full: the daemon is awake, or its poll will do


def drain(sock: socket.socket) -> bool:
    """Read every pending nudge; True if there was any."""
    got = False
    while True:
        try:
            sock.recv(64)
            got = True
        except (BlockingIOError, InterruptedError):
            return got
