"""Log lines: journald gets priorities and no timestamps of ours, a terminal or file gets timestamps."""
from __future__ import annotations

import io
import json
import logging
import os
import re
from datetime import datetime

import pytest

from dj_daemon import log
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
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[\d+\] dj_daemon.worker: job done id=1\n",
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
