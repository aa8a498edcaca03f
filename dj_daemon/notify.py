"""Talking to systemd through sd_notify; silent when not started by systemd.

Only the supervisor speaks: forked workers close the socket and drop
``NOTIFY_SOCKET`` so neither they nor job code can confuse systemd
(the unit also sets ``NotifyAccess=main``).
"""
from __future__ import annotations

import os

import sdnotify


class Notifier:
    """``READY=1``, ``STATUS=``, ``WATCHDOG=1``, ``RELOADING=1``, ``STOPPING=1``."""

    def __init__(self) -> None:
        self._systemd = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        self._last_status = ""

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of ``WATCHDOG_USEC``), or None when no watchdog is asked for."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 1e6 / 2

    def _send(self, message: str) -> None:
        if self._systemd is not None:
            self._systemd.notify(message)

    def ready(self) -> None:
        self._send("READY=1")

    def reloading(self) -> None:
        self._send("RELOADING=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """Send ``STATUS=text`` when it differs from the last one sent."""
        if text != self._last_status:
            self._last_status = text
            self._send(f"STATUS={text}")

    def close_in_child(self) -> None:
        """In a forked worker: forget the socket and the environment that names it."""
        if self._systemd is not None and self._systemd.socket is not None:
            self._systemd.socket.close()
        self._systemd = None
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            os.environ.pop(name, None)
