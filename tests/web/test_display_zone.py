"""The page shows its times as the CLIs do: in ``display_timezone``, each marked with its zone."""
from __future__ import annotations

import time
from datetime import datetime

from dj_daemon import display
from tests import jobs


def test_times_are_marked_in_the_display_zone(make_app, config, queue, monkeypatch) -> None:
    job_id = queue.enqueue(jobs.noop, run_at=datetime(2030, 1, 2, 3, 4, 5))
    page = make_app(config).test_client().get(f"/queue/{job_id}").get_data(as_text=True)
    assert "2030-01-02 03:04:05Z" in page and "(UTC)" not in page, page
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    display.local_zone.cache_clear()
    try:
        local = make_app(config, display_timezone="local").test_client()
        assert "2030-01-02 12:04:05+09:00" in local.get(f"/queue/{job_id}").get_data(as_text=True)
        assert "2030-01-02 12:04:05+09:00" in local.get("/queue").get_data(as_text=True)
    finally:
        monkeypatch.undo()
        time.tzset()
        display.local_zone.cache_clear()
