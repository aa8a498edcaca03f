"""``python -m tests.web.screenshot docs/web-overview.png``: the overview as docs/operations.md shows it.

A day of made-up traffic on a fresh SQLite file (per-minute rows for two
hosts, tracked jobs in each state, this process as a live worker), the page
served by waitress on a free loopback port, and headless Chromium's picture.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import waitress

from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.job import utcnow
from dj_daemon.store import minutes, open_store
from long_jobs.web import create_app
from tests import jobs
from tests.web.browser import start_browser
from tests.web.test_command import free_port


def day_of_traffic(store, now) -> None:
    for m in range(24 * 60):
        minute = now - timedelta(minutes=m)
        load = 30 + 25 * math.sin(m / 180)
        for host, share in (("worker-1", 0.6), ("worker-2", 0.4)):
            minutes.record(store, host, minute, int(load * share), int(m % 97 == 0) * 3, int(40 + 30 * math.cos(m / 90)))


def some_jobs(config: Config, store, folder: Path) -> None:
    queue = Queue(config, store)
    for n in range(1, 9):
        queue.enqueue(jobs.replicate, str(folder / "runs"), 1000 + n)
    queue.enqueue(jobs.submit, str(folder / "runs"), 1001)
    store.register_worker(f"{config.hostname}:{os.getpid()}", config.hostname, os.getpid())


def main(out: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="dj-shot-"))
    (folder / "sentinels").mkdir()
    config = Config(url=f"sqlite:///{folder / 'queue.sqlite3'}", hostname="worker-1", allowed_modules=("tests",),
                    sentinel_dir=str(folder / "sentinels"), pidfile=str(folder / "dj.pid"))
    store = open_store(config)
    store.create_schema()
    day_of_traffic(store, utcnow())
    some_jobs(config, store, folder)
    app = create_app(config, store=store)
    app.extensions["long_jobs"].counts.refresh()
    port = free_port()
    server = waitress.create_server(app, host="127.0.0.1", port=port)
    threading.Thread(target=server.run, daemon=True).start()
    browser = start_browser()
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        browser.save_screenshot(out)
    finally:
        browser.quit()
        server.close()
    print(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/web-overview.png")
