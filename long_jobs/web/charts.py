"""Charts drawn on the server as inline SVG: jobs done and failed per minute, and the queue's depth.

Pure: rows of ``delayed_job_minutes`` in (every host's added up), markup
out. A minute with no row is drawn as zero (no daemon wrote it), and a depth
not measured is left out of the line.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any, Iterable

WIDTH, HEIGHT, PAD = 720, 140, 28
MINUTE = timedelta(minutes=1)
DAY = 24 * 60
#: Minutes per point: 288 points a day, 2.5 pixels each, read as a few hundred rows.
BUCKET = 5


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: list[float | None]


def per_bucket(rows: Iterable[tuple[datetime, float, float, float | None]], start: datetime, points: int,
               bucket: int) -> dict[str, list[float | None]]:
    """``done``, ``failed`` and ``depth`` for each of ``points`` buckets of ``bucket`` minutes from
    ``start``, from the rows of ``store.minutes.since``."""
    out: dict[str, list[float | None]] = {"done": [0] * points, "failed": [0] * points, "depth": [None] * points}
    for moment, done, failed, depth in rows:
        index = (moment - start) // (bucket * MINUTE)
        if 0 <= index < points:
            out["done"][index], out["failed"][index], out["depth"][index] = done, failed, depth
    return out


def chart(title: str, series: list[Series], start: datetime, points: int, bucket: int = 1) -> str:
    """One SVG line chart of ``points`` buckets of ``bucket`` minutes, the y axis from 0 to the
    highest value, hours marked along x."""
    top = max([v for s in series for v in s.values if v is not None] or [0]) or 1
    x = lambda i: PAD + i * (WIDTH - 2 * PAD) / max(points - 1, 1)  # noqa: E731
    y = lambda v: HEIGHT - PAD + (v / top) * (2 * PAD - HEIGHT)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="{PAD}" y="14" class="t">{escape(title)} (max {top:.4g})</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>']
    parts += _hour_marks(start, points, bucket, x)
    for number, one in enumerate(series):
        parts.append(_line(one, x, y))
        parts.append(f'<text x="{WIDTH - PAD - 140 + 70 * number}" y="14" style="fill:{one.colour}">'
                     f'{escape(one.label)}</text>')
    return "".join(parts) + "</svg>"


def _hour_marks(start: datetime, points: int, bucket: int, x: Any) -> list[str]:
    """Every third hour's mark along the x axis."""
    marks = []
    for i in range(points):
        moment = start + i * bucket * MINUTE
        if moment.minute < bucket and moment.hour % 3 == 0:
            marks.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" class="h">{moment:%H:00}</text>')
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


def day_charts(rows: Iterable[tuple[datetime, float, float, float | None]], now: datetime,
               bucket: int = BUCKET) -> list[str]:
    """The overview's two charts over the 24 hours before ``now``, rows from ``day_start``."""
    start, points = day_start(now, bucket), DAY // bucket
    data = per_bucket(rows, start, points, bucket)
    return [chart(f"jobs per minute, {bucket}-minute means, last 24 h (UTC)",
                  [Series("done", "#2a7", data["done"]), Series("failed", "#c33", data["failed"])],
                  start, points, bucket),
            chart("queue depth, last 24 h (UTC)", [Series("due", "#36c", data["depth"])], start, points, bucket)]


def day_start(now: datetime, bucket: int = BUCKET) -> datetime:
    """The start of the first of the day's buckets, which are aligned on multiples of ``bucket``."""
    aligned = now.replace(second=0, microsecond=0)
    aligned -= timedelta(minutes=aligned.minute % bucket)
    return aligned - (DAY // bucket - 1) * bucket * MINUTE
