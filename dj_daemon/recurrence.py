"""Recurring entries as values: what to enqueue, and when it occurs (a cron expression or an interval).

Pure: no database, no clock (every function takes ``now``), no import of the
application. Times in and out are naive UTC, as stored. A cron expression is
read by croniter in the entry's time zone (zoneinfo), so ``0 2 * * *`` in
``Europe/Paris`` is 02:00 there whatever the season; six fields put seconds
last (croniter's form). An interval of N whole seconds occurs at every
multiple of N since 1970-01-01 00:00 UTC, so that every host computes the
same occurrences, whenever each started.

``plan`` decides what one host enqueues on one turn; see its docstring for
the missed-occurrence policies (``MISSED``) and the ``grace`` within which a
late occurrence still runs on its own (as sidekiq-cron's grace period).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

EPOCH = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)
#: ``skip``: occurrences missed while no daemon ran are dropped; ``run_once``: one job stands for them all.
MISSED = ("skip", "run_once")
#: Seconds an occurrence may be late and still run on its own (a restart, a slow turn), by default.
GRACE = 60.0
#: The most occurrences one entry enqueues on one turn (a tiny interval under a long grace).
MAX_PER_TURN = 1000
#: What a ``[schedule:NAME]`` section may hold.
KEYS = ("cron", "interval", "target", "args", "kwargs", "queue", "priority", "timezone", "missed", "grace")
NAME_LENGTH = 255  # the runs table's key column
INT32 = 2**31 - 1
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Entry:
    """One recurring job: ``target(*args, **kwargs)`` enqueued at each occurrence, exactly once
    across hosts (its key in the runs table is ``(name, occurrence)``)."""

    name: str
    target: str  # "pkg.mod:func", resolved under allowed_modules by ``schedule``
    cron: str | None = None
    interval: int | None = None  # seconds
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    queue: str | None = None
    priority: int | None = None
    timezone: str = "UTC"
    missed: str = "skip"
    grace: float = GRACE

    def __post_init__(self) -> None:
        for ok, problem in self._checks():
            if not ok:
                raise ConfigError(f"schedule entry {self.name!r}: {problem}")

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (0 < len(self.name) <= NAME_LENGTH, f"a name is 1 to {NAME_LENGTH} characters"),
            (isinstance(self.target, str) and ":" in self.target,
             f"target must be 'pkg.mod:func', not {self.target!r}"),
            ((self.cron is None) != (self.interval is None), "give either cron or interval, not both or neither"),
            (self.cron is None or _cron_ok(self.cron), f"invalid cron expression {self.cron!r}"),
            (self.interval is None or (isinstance(self.interval, int) and self.interval >= 1),
             f"interval must be a whole number of seconds, at least 1, not {self.interval!r}"),
            (_zone_ok(self.timezone), f"unknown time zone {self.timezone!r} (an IANA name such as Europe/Paris)"),
            (self.missed in MISSED, f"missed must be one of {', '.join(MISSED)}, not {self.missed!r}"),
            (math.isfinite(self.grace) and 0 <= self.grace <= 86400 * 3650,
             f"grace must be 0 to 10 years, not {self.grace!r}"),
            (self.priority is None or (isinstance(self.priority, int) and -INT32 - 1 <= self.priority <= INT32),
             f"priority must be an integer, not {self.priority!r}"),
            (isinstance(self.args, tuple) and isinstance(self.kwargs, Mapping),
             "args must be a list, kwargs an object"),
        ]

    @property
    def when(self) -> str:
        """How it recurs, as people read it."""
        if self.cron is not None:
            return f"cron {self.cron}" + ("" if self.timezone == "UTC" else f" ({self.timezone})")
        return f"every {self.interval}s"

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment``."""
        if self.interval is not None:
            return _from_us((_us(moment) // (self.interval * 10**6) + 1) * self.interval * 10**6)
        zone = ZoneInfo(self.timezone)
        start = moment.replace(tzinfo=timezone.utc).astimezone(zone)
        return _utc(_croniter()(self.cron, start).get_next(datetime))

    def latest(self, moment: datetime) -> datetime:
        """The last occurrence at or before ``moment``."""
        if self.interval is not None:
            return _from_us(_us(moment) // (self.interval * 10**6) * self.interval * 10**6)
        zone = ZoneInfo(self.timezone)
        start = moment.replace(tzinfo=timezone.utc).astimezone(zone)
        before = _utc(_croniter()(self.cron, start).get_prev(datetime))
        after = self.next_after(before)  # croniter's "previous" may stop short of ``moment`` itself
        return after if after <= moment else before

    def between(self, after: datetime, until: datetime, limit: int = MAX_PER_TURN) -> list[datetime]:
        """The occurrences in ``(after, until]``, oldest first; the last ``limit`` of them at most."""
        found: list[datetime] = []
        moment = self.latest(until)
        while moment > after and len(found) < limit:
            found.append(moment)
            moment = self.latest(moment - MICROSECOND)
        return found[::-1]


def plan(entry: Entry, handled: datetime | None, now: datetime) -> list[datetime]:
    """The occurrences this host enqueues now, oldest first, given the last one it handled
    (enqueued, or found enqueued by another host; at start, the last one in the runs table).

    An occurrence no older than ``grace`` runs on its own, however many there are since
    ``handled`` (each once: a host that finds its row taken moves on). Older ones were missed
    by every daemon: ``skip`` drops them, ``run_once`` enqueues the latest of them only, under
    that occurrence's key, so that hosts starting together still agree on one. An entry never
    run before has missed nothing."""
    if handled is not None and entry.latest(now) <= handled:
        return []
    horizon = now - timedelta(seconds=entry.grace)
    on_time = entry.between(max(handled, horizon) if handled else horizon, now)
    if handled is None or entry.missed == "skip":
        return on_time
    missed = entry.latest(horizon)
    return ([missed] if missed > handled else []) + on_time


def from_text(name: str, items: Mapping[str, str], where: str) -> Entry:
    """An entry from a ``[schedule:NAME]`` section's text; each problem is one ``ConfigError`` line."""
    unknown = sorted(set(items) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    if "target" not in items:
        raise ConfigError(f"{where}: target is missing (write target = pkg.mod:func)")
    try:
        return Entry(name=name, target=items["target"].strip(), cron=_text(items.get("cron")),
                     interval=seconds(items["interval"]) if "interval" in items else None,
                     args=tuple(_json(items.get("args", "[]"), list, "args")),
                     kwargs=_json(items.get("kwargs", "{}"), dict, "kwargs"), queue=_text(items.get("queue")),
                     priority=int(items["priority"]) if _text(items.get("priority")) else None,
                     timezone=_text(items.get("timezone")) or "UTC", missed=items.get("missed", "skip").strip(),
                     grace=seconds(items["grace"]) if "grace" in items else GRACE)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def seconds(text: str) -> int:
    """``90``, ``90s``, ``5m``, ``2h`` or ``1d`` as whole seconds."""
    text = text.strip().lower()
    unit = UNITS.get(text[-1:], None)
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise ValueError(f"invalid duration {text!r} (whole seconds, or with s, m, h or d: 30s, 5m)")
    return int(number) * (unit or 1)


def _text(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _json(text: str, kind: type, key: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{key} is not JSON: {exc}") from None
    if not isinstance(value, kind):
        raise ValueError(f"{key} must be a JSON {'list' if kind is list else 'object'}, not {text.strip()!r}")
    return value


def _croniter() -> Any:
    """croniter, imported on first use: 50 ms that an application without cron entries (every
    ``import dj_daemon`` reads the config module) does not pay."""
    from croniter import croniter

    return croniter


def _cron_ok(expression: str) -> bool:
    return isinstance(expression, str) and len(expression.split()) in (5, 6) and _croniter().is_valid(expression)


def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def _from_us(us: int) -> datetime:
    return EPOCH + us * MICROSECOND


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)
