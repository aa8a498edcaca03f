"""Logging set-up: one line per event, journald-friendly, or one JSON object per line.

Under systemd, journald stamps each line itself, so timestamps are left out
there, and each line starts with its syslog priority (``<4>`` for a warning),
which journald takes off and files, so that ``journalctl -p warning`` works;
elsewhere lines keep a timestamp. "Under journald" means ``JOURNAL_STREAM``
names the very file stderr is (its ``device:inode``), as systemd documents.
``log_format = json`` is for log shippers: every line is an object with the
time, level, logger, host, pid and message, plus the job's id, class, queue
and attempt (and the run's duration) where the line is about a job.
Times are in ``display_timezone`` and marked (``2026-12-07 04:10:00.123Z``, or
the local offset), formatted with that zone rather than ``time.localtime``, so
that a host application changing ``TZ`` mid-run (Django does, as its settings
load) does not move the clock of the lines (see ``display``).
Messages never contain a database password: URLs are logged masked.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
from datetime import datetime, timezone, tzinfo
from typing import Any, TextIO

from . import display


class JsonFormatter(logging.Formatter):
    """One JSON object per record; job fields come from ``extra={"job": job, "duration": s}``."""

    def __init__(self, hostname: str, zone: tzinfo = timezone.utc) -> None:
        super().__init__()
        self.hostname, self.zone = hostname, zone

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, self.zone).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "host": self.hostname,
            "pid": record.process,
            "message": record.getMessage(),
        }
        job = getattr(record, "job", None)
        if job is not None:
            entry.update(job_id=job.id, job_class=job.name, queue=job.queue, attempt=job.attempts + 1)
        duration = getattr(record, "duration", None)
        if duration is not None:
            entry["duration"] = round(duration, 6)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines whose time is in one fixed zone, marked (never ``time.localtime``)."""

    def __init__(self, fmt: str, zone: tzinfo = timezone.utc) -> None:
        super().__init__(fmt)
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return display.when(datetime.fromtimestamp(record.created, self.zone), self.zone, milliseconds=True)


class JournalFormatter(logging.Formatter):
    """Lines for journald: another formatter's, led by the syslog priority as a ``<N>`` prefix."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return f"<{syslog_priority(record.levelno)}>{self.inner.format(record)}"


def syslog_priority(levelno: int) -> int:
    """err 3, warning 4, info 6, debug 7 (crit 2 above ERROR)."""
    for floor, priority in ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6)):
        if levelno >= floor:
            return priority
    return 7


def to_journald(stream: TextIO) -> bool:
    """True when ``stream`` is the journal stream systemd connected (``JOURNAL_STREAM`` is its device:inode)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return bool(expected) and expected == f"{info.st_dev}:{info.st_ino}"


def setup(level: str = "INFO", stream: TextIO | None = None, filename: str = "", log_format: str = "text",
          hostname: str = "", timezone_name: str = "utc") -> None:
    """Send our loggers to ``filename`` or ``stream`` (stderr) at ``level``, as text or JSON lines,
    their times in the ``display_timezone`` named (``utc`` or ``local``)."""
    handler: logging.Handler = (logging.FileHandler(filename, encoding="utf-8") if filename
                                else logging.StreamHandler(stream or sys.stderr))
    journald = not filename and to_journald(stream or sys.stderr)
    fmt = "%(levelname)s [%(process)d] %(name)s: %(message)s"
    zone = display.zone(timezone_name)
    formatter = (JsonFormatter(hostname or socket.gethostname(), zone) if log_format == "json"
                 else TextFormatter(fmt if journald else "%(asctime)s " + fmt, zone))
    handler.setFormatter(JournalFormatter(formatter) if journald else formatter)
    root = logging.getLogger("dj_daemon")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    enable()


def enable() -> None:
    """Our loggers on again: a host application's ``dictConfig`` (Django's ``LOGGING``, with
    ``disable_existing_loggers`` as its default) silences every logger that exists by then."""
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("dj_daemon") and isinstance(logger, logging.Logger):
            logger.disabled = False
