"""Log lines: journald gets priorities and no timestamps of ours, a terminal or file gets timestamps."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from datetime import datetime, timezone

import pytest

from dj_daemon import display, log
from dj_daemon.job import Job


def lines_for(monkeypatch, tmp_path, journal: str | None) -> str:
    """What our loggers write to a real file that ``JOURNAL_STREAM`` names (``"this"``), names not
    (another device:inode), or is unset (None)."""
    path = tmp_path / "stderr.txt"
    with open(path, "w", encoding="utf-8") as stream:
        info = os.fstat(stream.fileno())
        if journal is None:
            monkeypatch.delenv("JOURNAL_STREAM", raising=False)
        else:
            monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}" if journal == "this" else "8:12345")
        log.setup("INFO", stream=stream)
        logging.getLogger("dj_daemon.worker").info("job done id=1")
        logging.getLogger("dj_daemon.supervisor").warning("released 1 job(s)")
    return path.read_text(encoding="utf-8")


def test_journald_lines_carry_their_priority_and_no_timestamp(monkeypatch, tmp_path) -> None:
    """journald takes ``<N>`` off and files the line at that priority (``journalctl -p warning``)."""
    assert re.fullmatch(r"<6>INFO \[\d+\] dj_daemon.worker: job done id=1\n"
                        r"<4>WARNING \[\d+\] dj_daemon.supervisor: released 1 job\(s\)\n",
                        lines_for(monkeypatch, tmp_path, "this"))


@pytest.mark.parametrize("journal", [None, "another"])
def test_other_lines_have_a_timestamp(monkeypatch, tmp_path, journal) -> None:
    """Also where JOURNAL_STREAM is inherited but stderr was redirected elsewhere."""
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z INFO \[\d+\] dj_daemon.worker: job done id=1\n",
                    lines_for(monkeypatch, tmp_path, journal))


def test_json_lines_carry_the_job_fields(monkeypatch) -> None:
    """``log_format = json``: one object per line, job fields from ``extra``, tracebacks kept."""
    stream = io.StringIO()
    log.setup("INFO", stream=stream, log_format="json", hostname="web1")
    job = Job(id=7, priority=0, attempts=1, handler='{"target":"mail:send"}', queue="mail", run_at=datetime.now())
    logger = logging.getLogger("dj_daemon.worker")
    logger.info("job done %s", job.log_context(), extra={"job": job, "duration": 0.25})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("hook raised")
    done, failed = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert done["message"] == "job done id=7 mail:send queue=mail attempt=2"
    assert {k: done[k] for k in ("level", "logger", "host", "job_id", "job_class", "queue", "attempt", "duration")} \
        == {"level": "INFO", "logger": "dj_daemon.worker", "host": "web1", "job_id": 7, "job_class": "mail:send",
            "queue": "mail", "attempt": 2, "duration": 0.25}
    assert done["pid"] > 0 and done["time"].endswith("+00:00")
    assert "job_id" not in failed and "ValueError: boom" in failed["traceback"]


@pytest.fixture
def paris(monkeypatch):
    """The process in Europe/Paris (UTC+1 in December), as its ``TZ`` says; undone afterwards."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    display.local_zone.cache_clear()
    yield
    monkeypatch.undo()
    time.tzset()
    display.local_zone.cache_clear()


def test_local_log_times_are_marked_and_do_not_move_when_tz_changes_mid_run(paris, monkeypatch) -> None:
    """``display_timezone = local``: the zone is read once; Django setting ``TZ`` and calling
    ``time.tzset()`` as its settings load (here: to New York) leaves the lines' clock alone."""
    stream = io.StringIO()
    log.setup("INFO", stream=stream, timezone_name="local")
    logger = logging.getLogger("dj_daemon.worker")
    logger.info("before")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    logger.info("after")
    before, after = stream.getvalue().splitlines()
    pattern = r"(\d{4}-\d\d-\d\d \d\d):\d\d:\d\d\.\d{3}\+01:00 INFO \[\d+\] dj_daemon.worker: (before|after)"
    first, second = re.fullmatch(pattern, before), re.fullmatch(pattern, after)
    assert first and second, (before, after)
    utc_hour = datetime.now(timezone.utc).hour
    assert int(first.group(1)[-2:]) in ((utc_hour + 1) % 24, (utc_hour + 2) % 24)  # UTC+1, not New York's UTC-5


def test_utc_log_times_are_utc_whatever_tz_says(paris) -> None:
    stream = io.StringIO()
    log.setup("INFO", stream=stream, log_format="json")
    logging.getLogger("dj_daemon.worker").info("x")
    assert json.loads(stream.getvalue())["time"].endswith("+00:00")
    stream = io.StringIO()
    log.setup("INFO", stream=stream)
    logging.getLogger("dj_daemon.worker").info("x")
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z ", stream.getvalue())


def test_display_marks_each_time_with_its_zone(paris) -> None:
    stored = datetime(2026, 12, 7, 4, 10)  # naive: UTC, as the columns hold it
    assert display.when(stored, display.zone("utc")) == "2026-12-07 04:10:00Z"
    assert display.when(stored, display.zone("local")) == "2026-12-07 05:10:00+01:00"
    assert display.when(datetime(2026, 7, 1, 4, 10), display.zone("local")) == "2026-07-01 06:10:00+02:00"
    assert display.when(datetime(9999, 12, 31, 23, 30), display.zone("local")) == "9999-12-31 23:30:00Z"
    assert display.when(None, timezone.utc) == "-" and display.when("garbage", timezone.utc) == "garbage"
    for zone in (display.zone("utc"), display.zone("local")):
        assert len(display.when(stored, zone)) == display.width(zone)


def test_counts_take_their_noun_in_the_right_number() -> None:
    assert [display.count(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
    assert display.count(1, "failed run") == "1 failed run"
