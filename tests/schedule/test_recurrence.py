"""The pure half of recurring jobs: occurrences, the missed-occurrence policies, the entry's checks."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dj_daemon.errors import ConfigError
from dj_daemon.recurrence import Entry, from_text, plan, seconds

T0 = datetime(2026, 1, 1)


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


def test_an_interval_occurs_on_multiples_since_the_epoch_whoever_computes_it() -> None:
    entry = Entry("e", "m:f", interval=5)
    assert entry.latest(at(12.3)) == at(10) and entry.latest(at(10)) == at(10)
    assert entry.next_after(at(10)) == at(15)
    assert entry.between(at(0), at(12)) == [at(5), at(10)]


def test_cron_reads_seconds_last_and_its_time_zone() -> None:
    seconds_cron = Entry("e", "m:f", cron="* * * * * */2")
    assert seconds_cron.latest(at(4)) == at(4) and seconds_cron.latest(at(5.5)) == at(4)
    paris = Entry("e", "m:f", cron="30 2 * * *", timezone="Europe/Paris")
    assert paris.latest(datetime(2026, 7, 1, 12)) == datetime(2026, 7, 1, 0, 30)  # summer: UTC+2
    assert paris.next_after(datetime(2026, 1, 1, 12)) == datetime(2026, 1, 2, 1, 30)  # winter: UTC+1


def test_daylight_saving_time_as_croniter_reads_it() -> None:
    """02:30 in Paris: skipped on 29 March 2026 (it runs at 03:00), twice on 25 October (summer time,
    then winter time, an hour apart); docs/operations.md says so."""
    paris = Entry("e", "m:f", cron="30 2 * * *", timezone="Europe/Paris")
    assert paris.between(datetime(2026, 3, 28, 12), datetime(2026, 3, 29, 12)) == [datetime(2026, 3, 29, 1)]
    assert paris.between(datetime(2026, 10, 24, 12), datetime(2026, 10, 25, 12)) == [
        datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 25, 1, 30)]


def test_on_time_occurrences_each_run_and_handled_ones_never_again() -> None:
    entry = Entry("e", "m:f", interval=1, grace=5)
    assert plan(entry, at(10), at(13.2)) == [at(11), at(12), at(13)]
    assert plan(entry, at(13), at(13.9)) == []


def test_missed_occurrences_are_skipped_or_run_once() -> None:
    """Down from 10 s to 100 s: with a grace of 5 s, 11 to 95 were missed by every daemon."""
    skip = Entry("e", "m:f", interval=1, grace=5)
    once = Entry("e", "m:f", interval=1, grace=5, missed="run_once")
    on_time = [at(s) for s in range(96, 101)]
    assert plan(skip, at(10), at(100)) == on_time
    assert plan(once, at(10), at(100)) == [at(95)] + on_time
    assert plan(once, None, at(100)) == on_time  # never run before: nothing was missed


def test_config_text_becomes_an_entry() -> None:
    entry = from_text("nightly", {"cron": "0 2 * * *", "target": "app.jobs:report", "args": '["x", 1]',
                                  "queue": "reports", "priority": "5", "timezone": "Europe/Paris",
                                  "missed": "run_once", "grace": "10m"}, "f: [schedule:nightly]")
    assert (entry.args, entry.queue, entry.priority, entry.grace, entry.missed) == (("x", 1), "reports", 5, 600,
                                                                                   "run_once")
    assert seconds("90") == 90 and seconds("2h") == 7200


@pytest.mark.parametrize("items, message", [
    ({"cron": "61 * * * *", "target": "a:b"}, "invalid cron expression '61 * * * *'"),
    ({"interval": "5", "target": "a:b", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ({"interval": "soon", "target": "a:b"}, "invalid duration 'soon'"),
    ({"interval": "5"}, "target is missing"),
    ({"interval": "5", "cron": "* * * * *", "target": "a:b"}, "either cron or interval"),
    ({"interval": "5", "target": "a:b", "args": "{"}, "args is not JSON"),
    ({"interval": "5", "target": "a:b", "missed": "later"}, "missed must be one of skip, run_once"),
    ({"interval": "5", "target": "a:b", "every": "1"}, "unknown key 'every'"),
])
def test_a_bad_entry_is_one_line_naming_its_section(items: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_text("e", items, "f: [schedule:e]")
    assert str(caught.value).startswith("f: [schedule:e]: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)
