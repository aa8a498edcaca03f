"""Logging set-up: one line per event, journald-friendly.

Under systemd, journald stamps each line itself (it sets ``JOURNAL_STREAM``
for our stderr), so timestamps are left out there; elsewhere they are kept.
Messages never contain a database password: URLs are logged masked.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import TextIO


def setup(level: str = "INFO", stream: TextIO | None = None, filename: str = "") -> None:
    """Send our loggers to ``filename`` or ``stream`` (stderr) at ``level``."""
    journald = bool(os.environ.get("JOURNAL_STREAM")) and not filename
    fmt = "%(levelname)s [%(process)d] %(name)s: %(message)s"
    if not journald:
        fmt = "%(asctime)s " + fmt
    handler: logging.Handler = (logging.FileHandler(filename, encoding="utf-8") if filename
                                else logging.StreamHandler(stream or sys.stderr))
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("dj_daemon")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
