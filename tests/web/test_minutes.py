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
    for event in ("ok", "ok", "fail", "busy", "wait"):
        counts.count(event)
    assert counts.flush(store, 5) and minutes.since(store, T0 - timedelta(days=1)) == []  # same minute: no write
    clock.now = T0 + timedelta(seconds=70)
    counts.flush(store, 5)
    [row] = minutes.since(store, T0 - timedelta(days=1))
    assert (row["hostname"], row["minute"], row["done"], row["failed"], row["depth"]) == (
        "testhost", T0.replace(second=0), 2, 1, 5)
    minutes.record(store, "testhost", T0.replace(second=0), 3, 0, 9)  # a restarted supervisor, same minute
    [row] = minutes.since(store, T0 - timedelta(days=1))
    assert (row["done"], row["failed"], row["depth"]) == (5, 1, 9)


def test_rows_older_than_a_week_are_pruned(store) -> None:
    old = T0 - tally.KEEP - timedelta(minutes=5)
    minutes.record(store, "a", old, 1, 0, None)
    minutes.record(store, "a", T0 - timedelta(minutes=5), 1, 0, None)
    clock = Clock()
    counts = tally.Tally("a", clock)
    clock.now = T0 + timedelta(minutes=1)
    counts.flush(store, None)
    assert [r["minute"] for r in minutes.since(store, old - timedelta(days=1))] == [
        T0 - timedelta(minutes=5), T0.replace(second=0)]


def test_charts_add_up_hosts_and_leave_unmeasured_depths_out() -> None:
    start = T0.replace(second=0)
    rows = [{"minute": start, "done": 3, "failed": 1, "depth": 4}, {"minute": start, "done": 2, "failed": 0,
                                                                    "depth": None},
            {"minute": start + timedelta(minutes=2), "done": 1, "failed": 0, "depth": 2}]
    data = charts.per_minute(rows, start, 3)
    assert data == {"done": [5, 0, 1], "failed": [1, 0, 0], "depth": [4, None, 2]}
    svg = charts.chart("depth", [charts.Series("due", "#000", data["depth"])], start, 3)
    assert svg.count("<polyline") == 2 and "(max 4)" in svg  # the gap splits the line
