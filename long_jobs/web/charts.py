"""Charts drawn on the server as inline SVG: jobs done and failed per minute, and the queue's depth.

Pure: rows of ``delayed_job_minutes`` in, markup out. Every host's rows of a
minute are added up; a minute with no row is drawn as zero (no daemon wrote
it), and a depth not measured is left out of the line.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any, Iterable

WIDTH, HEIGHT, PAD = 720, 140, 28


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: list[float | None]


def per_minute(rows: Iterable[dict[str, Any]], start: datetime, minutes: int) -> dict[str, list[float | None]]:
    """``done``, ``failed`` and ``depth`` for each minute from ``start``, every host's added up."""
    out: dict[str, list[float | None]] = {"done": [0] * minutes, "failed": [0] * minutes, "depth": [None] * minutes}
    for row in rows:
        index = int((row["minute"] - start) / timedelta(minutes=1))
        if 0 <= index < minutes:
            out["done"][index] = (out["done"][index] or 0) + row["done"]
            out["failed"][index] = (out["failed"][index] or 0) + row["failed"]
            if row["depth"] is not None:
                out["depth"][index] = (out["depth"][index] or 0) + row["depth"]
    return out


def chart(title: str, series: list[Series], start: datetime, minutes: int) -> str:
    """One SVG line chart, the y axis from 0 to the highest value, hours marked along x."""
    top = max([v for s in series for v in s.values if v is not None] or [0]) or 1
    x = lambda i: PAD + i * (WIDTH - 2 * PAD) / max(minutes - 1, 1)  # noqa: E731
    y = lambda v: HEIGHT - PAD + (v / top) * (2 * PAD - HEIGHT)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="{PAD}" y="14" class="t">{escape(title)} (max {top:g})</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>']
    parts += _hour_marks(start, minutes, x)
    for number, one in enumerate(series):
        parts.append(_line(one, x, y))
        parts.append(f'<text x="{WIDTH - PAD - 140 + 70 * number}" y="14" fill="{one.colour}">'
                     f'{escape(one.label)}</text>')
    return "".join(parts) + "</svg>"


def _hour_marks(start: datetime, minutes: int, x: Any) -> list[str]:
    marks = []
    for i in range(minutes):
        moment = start + timedelta(minutes=i)
        if moment.minute == 0 and moment.hour % 3 == 0:
            marks.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" class="h">{moment:%H:%M}</text>')
    return marks


def _line(series: Series, x: Any, y: Any) -> str:
    """A polyline per unbroken run of values (a gap where a depth was not measured)."""
    runs, current = [], []
    for i, value in enumerate(series.values):
        if value is None:
            runs, current = (runs + [current] if current else runs), []
        else:
            current.append(f"{x(i):.1f},{y(value):.1f}")
    runs += [current] if current else []
    return "".join(f'<polyline fill="none" stroke="{series.colour}" stroke-width="1.2" points="{" ".join(r)}"/>'
                   for r in runs)


def day_charts(rows: Iterable[dict[str, Any]], now: datetime) -> list[str]:
    """The overview's two charts over the 24 hours before ``now``."""
    minutes = 24 * 60
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    data = per_minute(rows, start, minutes)
    return [chart("jobs per minute, last 24 h (UTC)", [Series("done", "#2a7", data["done"]),
                                                         Series("failed", "#c33", data["failed"])], start, minutes),
            chart("queue depth, last 24 h (UTC)", [Series("due", "#36c", data["depth"])], start, minutes)]
