"""How both CLIs and the log show values to people: a time in one marked zone, a count with its noun.

``display_timezone`` (``utc``, the default, or ``local``) picks the zone once for
every time shown: log prefixes, ``delayed_job jobs list/show``, ``long_jobs
list/show/status`` and the worker's "retry at". A time always carries its mark
(``Z`` for UTC, the offset for local time), so a line read out of context still
says which clock it is on. Stored times are naive UTC (the columns hold no zone).

The local zone is read once, from ``TZ`` or ``/etc/localtime``, the first time
it is asked for (the daemon asks as it sets up logging, before forking):
Django sets ``TZ`` and calls ``time.tzset()`` when its settings load, and a
worker's log clock must not jump then.
"""
from __future__ import annotations

import functools
import os
from datetime import datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

def zone(name: str) -> tzinfo:
    """The zone a ``display_timezone`` value names."""
    return timezone.utc if name == "utc" else local_zone()


@functools.lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """This host's zone as the process found it first: ``TZ`` if set, else ``/etc/localtime``,
    else the C library's current offset (fixed: no daylight-saving changes then)."""
    key = os.environ.get("TZ", "").lstrip(":")
    try:
        if key.startswith("/"):
            with open(key, "rb") as file:
                return ZoneInfo.from_file(file, key=key)
        if key:
            return ZoneInfo(key)
        with open("/etc/localtime", "rb") as file:
            return ZoneInfo.from_file(file, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return datetime.now().astimezone().tzinfo or timezone.utc


def when(value: Any, shown_in: tzinfo, milliseconds: bool = False) -> str:
    """``2026-12-07 04:10:00Z`` (UTC) or ``2026-12-07 05:10:00+01:00`` (local); ``-`` for none,
    and a stored value that is no time as it is. A naive time is UTC, as the columns hold it."""
    if value is None:
        return "-"
    if not isinstance(value, datetime):
        return str(value)
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    try:
        moved = aware.astimezone(shown_in)
    except (OverflowError, ValueError):  # year 9999 pushed past the calendar's end: shown in UTC
        moved = aware.astimezone(timezone.utc)
    stamp = f"{moved:%Y-%m-%d %H:%M:%S}" + (f".{moved.microsecond // 1000:03d}" if milliseconds else "")
    return stamp + _mark(moved)


def _mark(moved: datetime) -> str:
    """``Z`` for UTC, else the offset as ``+01:00``."""
    if moved.tzinfo is timezone.utc:
        return "Z"
    offset = moved.strftime("%z")
    return f"{offset[:3]}:{offset[3:5]}" if offset else "Z"


def width(shown_in: tzinfo) -> int:
    """The characters ``when`` takes for a time in ``shown_in``: a column's width."""
    return 20 if shown_in is timezone.utc else 25


def count(number: int, noun: str, plural: str = "") -> str:
    """``1 job``, ``2 jobs`` (``plural`` when adding an s is wrong)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
