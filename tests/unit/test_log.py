"""Log lines: journald gets no timestamps of ours, a terminal or file does."""
from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime

from dj_daemon import log
from dj_daemon.job import Job


def line_for(monkeypatch, journal: bool) -> str:
    if journal:
        monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    else:
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    log.setup("INFO", stream=stream)
    logging.getLogger("dj_daemon.worker").info("job done id=1")
    return stream.getvalue()


def test_journald_lines_have_no_timestamp(monkeypatch) -> None:
    assert re.fullmatch(r"INFO \[\d+\] dj_daemon.worker: job done id=1\n", line_for(monkeypatch, True))


def test_other_lines_have_a_timestamp(monkeypatch) -> None:
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[\d+\] dj_daemon.worker: job done id=1\n",
                    line_for(monkeypatch, False))


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
