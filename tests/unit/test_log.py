"""Log lines: journald gets no timestamps of ours, a terminal or file does."""
from __future__ import annotations

import io
import logging
import re

from dj_daemon import log


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
