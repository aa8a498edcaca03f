"""The per-minute counts behind the charts: counted from the workers' reports, one write a minute,
added up per (host, minute), pruned after a week; and the charts drawn from them."""
from __future__ import annotations

from datetime import datetime, timedelta

from dj_daemon import minutes as tally
from dj_daemon.store import minutes
from long_jobs.web import charts

T0 = datetime(2030, 1, 2, 3, 4, 5)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_counts_are_written_once_the_minute_ends_and_added_up(store) -> None:
    clock = Clock()
    counts = tally.Tally("testhost", clock)
    counts.count(2, 1)  # two runs succeeded, one failed
    counts.count(0, 0)
    assert counts.flush(store, 5) and minutes.since(store, T0 - timedelta(days=1)) == []  # same minute: no write
    clock.now = T0 + timedelta(seconds=70)
    counts.flush(store, 5)
    assert minutes.since(store, T0 - timedelta(days=1)) == [(T0.replace(second=0), 2.0, 1.0, 5.0)]
    minutes.record(store, "testhost", T0.replace(second=0), 3, 0, 9)  # a restarted supervisor, same minute
    minutes.record(store, "otherhost", T0.replace(second=0), 1, 1, 1)  # another host: added up
    assert minutes.since(store, T0 - timedelta(days=1)) == [(T0.replace(second=0), 6.0, 2.0, 10.0)]
    minutes.record(store, "testhost", T0.replace(minute=6, second=0), 4, 0, None)  # depth not measured
    five = T0.replace(minute=5, second=0)
    assert minutes.since(store, T0 - timedelta(days=1), bucket=5) == [  # per minute, means of the minutes
        (T0.replace(minute=0, second=0), 6 / 5, 2 / 5, 10.0), (five, 4 / 5, 0.0, None)]


def test_rows_older_than_a_week_are_pruned(store) -> None:
    old = T0 - tally.KEEP - timedelta(minutes=5)
    minutes.record(store, "a", old, 1, 0, None)
    minutes.record(store, "a", T0 - timedelta(minutes=5), 1, 0, None)
    clock = Clock()
    counts = tally.Tally("a", clock)
    clock.now = T0 + timedelta(minutes=1)
    counts.flush(store, None)
    assert [r[0] for r in minutes.since(store, old - timedelta(days=1))] == [
        (T0 - timedelta(minutes=5)).replace(second=0), T0.replace(second=0)]


def test_charts_leave_missing_minutes_at_zero_and_unmeasured_depths_out() -> None:
    start = T0.replace(second=0)
    rows = [(start, 5, 1, 4), (start + timedelta(minutes=2), 1, 0, 2), (start + timedelta(minutes=9), 1, 1, 1)]
    data = charts.per_bucket(rows, start, 3, 1)
    assert data == {"done": [5, 0, 1], "failed": [1, 0, 0], "depth": [4, None, 2]}
    svg = charts.chart("depth", [charts.Series("due", "#000", data["depth"])], start, 3)
    assert svg.count("<polyline") == 2 and "(max 4)" in svg  # the gap splits the line
