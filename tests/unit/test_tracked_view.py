"""Tracked jobs as operators see them (``long_jobs.tracked``, ``long_jobs.report``): pure values, no database."""
from __future__ import annotations

from datetime import datetime, timedelta

from dj_daemon.store.history import NOTE_LIMIT, note_of
from long_jobs import report
from long_jobs.tracked import FROM_ROW, HistoryEntry, TrackedJob, TrackedPage, history_of

T0 = datetime(2026, 12, 7, 3, 0, 0)


def job(**values) -> TrackedJob:
    row = {"id": 12, "job_class": "app.jobs:copy", "identifier": "7", "gate": "defer", "state": "enqueued",
           "hostname": "h1", "delayed_job_id": 40, "queue": None, "priority": 0, "last_error": None,
           "created_at": T0, "updated_at": T0, "started_at": None, "finished_at": None, "attempts": 0,
           **values}
    return TrackedJob.from_row(row, max_attempts=25)


def test_a_waiting_job_with_failed_attempts_shows_as_retrying_with_the_attempt_to_come() -> None:
    failing = job(attempts=6, queue_error="ValueError: boom\nTraceback ...", last_error="ValueError: boom")
    assert failing.retrying and failing.shown_state == "retrying (attempt 7 of 25: ValueError: boom)"
    assert not job().retrying and job().shown_state == "enqueued"  # never failed: just waiting
    assert not job(attempts=6, locked_by="h1:99").retrying  # a worker holds it: running, not waiting
    assert job(state="error", attempts=25, failed_at=T0).shown_state == "error"
    assert job(state="completed", attempts=None).shown_state == "completed"


def test_history_of_a_row_made_before_the_table_starts_with_what_its_times_tell() -> None:
    done = job(state="completed", started_at=T0 + timedelta(minutes=1), finished_at=T0 + timedelta(minutes=2))
    assert history_of(done, []) == [HistoryEntry("enqueued", T0, None, FROM_ROW),
                                     HistoryEntry("running", done.started_at, "h1", FROM_ROW),
                                     HistoryEntry("completed", done.finished_at, "h1", FROM_ROW)]
    kept = [HistoryEntry("enqueued", T0), HistoryEntry("running", T0 + timedelta(seconds=1), "h1")]
    assert history_of(job(), kept) == kept  # the whole history was kept
    later = [HistoryEntry("enqueued", T0 + timedelta(days=1), "h1", "re-enqueued from error")]
    assert history_of(job(), later) == [HistoryEntry("enqueued", T0, None, FROM_ROW)] + later


def test_notes_are_the_first_line_cut() -> None:
    assert note_of("ValueError: x\n  File ...") == "ValueError: x"
    assert note_of(None) is None and note_of("  \n") is None
    assert len(note_of("x" * 5000) or "") == NOTE_LIMIT


def test_a_page_line_and_the_command_for_the_next_page() -> None:
    failing = job(attempts=6, queue_error="E: " + "y" * 200)
    text = report.page_text(TrackedPage([failing], 12, 1), "long_jobs list --limit 1")
    header, line, more = text.splitlines()
    assert header.split()[:6] == ["id", "state", "class", "identifier", "host", "attempts"]
    assert line.split()[:6] == ["12", "retrying", "app.jobs:copy", "7", "h1", "6/25"]
    assert line.endswith("y...") and len(line.split(" 03:00:00Z ")[1]) == report.ERROR_WIDTH
    assert more == "more: long_jobs list --limit 1 --before 12"
    assert report.page_text(TrackedPage([], None, 50), "x").splitlines()[1:] == ["  no tracked job"]
