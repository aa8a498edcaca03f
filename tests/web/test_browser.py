"""End to end in headless Chromium: an operator drains, restarts, resends and resets stalled through
the page, against the real daemon (``delayed_job run``), ``long_jobs web`` under waitress, and MariaDB.

Screenshots of each step are saved in ``.pytest_cache/web-screenshots/`` (the path is printed).
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from dj_daemon import sentinels
from dj_daemon.api import Queue
from long_jobs import ops
from tests import jobs
from tests.conftest import ROOT, bin_path, make_db_url
from tests.process.daemon import wait_for
from tests.web.browser import start_browser
from tests.web.test_command import answers, free_port

SHOTS = ROOT / ".pytest_cache" / "web-screenshots"


@pytest.fixture(params=["mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """MariaDB only: the acceptance asks for the real daemon on the real server."""
    yield from make_db_url(request, request.param, tmp_path)


@pytest.fixture
def web(subprocess_env: dict[str, str], store, tmp_path: Path) -> Iterator[str]:
    """``long_jobs web`` on a free loopback port; its URL."""
    Path(subprocess_env["DJ_SENTINEL_DIR"]).mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(tmp_path / "web.log", "w")
    server = subprocess.Popen([bin_path("long_jobs"), "web", "--bind", f"127.0.0.1:{port}"], env=subprocess_env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(url + "/tracked") or server.poll() is not None, 30, "long_jobs web")
    assert server.poll() is None, (tmp_path / "web.log").read_text()
    yield url
    server.terminate()
    server.wait(10)
    log.close()
    print((tmp_path / "web.log").read_text())


@pytest.fixture
def browser() -> Iterator[object]:
    driver = start_browser()
    yield driver
    driver.quit()


class Operator:
    """The browser as a person uses it: open pages, press buttons, confirm, take screenshots."""

    def __init__(self, driver, url: str) -> None:
        from selenium.webdriver.common.by import By
        self.driver, self.url, self.by = driver, url, By
        driver.implicitly_wait(15)  # an element of the next page is waited for, as a person would
        SHOTS.mkdir(parents=True, exist_ok=True)

    def open(self, path: str) -> str:
        self.driver.get(self.url + path)
        return self.driver.find_element(self.by.TAG_NAME, "body").text

    def act(self, button_id: str) -> str:
        """Press an action's button, then the confirmation page's; returns the message shown."""
        self.driver.find_element(self.by.ID, button_id).click()
        confirm = self.driver.find_element(self.by.ID, "confirm")  # waits for the confirmation page
        assert "Cancel" in self.driver.find_element(self.by.TAG_NAME, "body").text  # the confirmation step
        confirm.click()
        return self.driver.find_element(self.by.ID, "flash").text

    def shot(self, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def wait_state(store, identifier: int, state: str, timeout: float = 30.0) -> dict:
    def found() -> dict | None:
        rows = [r for r in store.tracked(identifier=str(identifier)) if r["state"] == state]
        return rows[-1] if rows else None
    wait_for(found, timeout, f"job {identifier} {state}")
    return found()  # type: ignore[return-value]


def test_an_operator_drains_restarts_resends_and_resets_stalled_in_chromium(
        config, store, start_daemon, web, browser, tmp_path) -> None:
    daemon = start_daemon("-n", "2")
    daemon.wait_ready()
    me = Operator(browser, web)
    side, flag, fixed = str(tmp_path / "runs"), str(tmp_path / "flag"), str(tmp_path / "fixed")
    queue = Queue(config, store)

    page = me.open("/")
    assert "running: " in page and "testhost:" in page
    me.shot("1-overview")

    assert me.act("action-drain") == "draining testhost: defer_jobs.txt, hold-submissions.txt written"
    assert set(sentinels.present(config.sentinel_dir)) == {"defer_jobs.txt", "hold-submissions.txt"}
    queue.enqueue(jobs.replicate, side, 11)
    wait_state(store, 11, "deferred")
    assert "deferred" in me.open("/tracked?state=deferred")
    me.shot("2-drained-deferred")

    me.open("/")
    assert "1 job(s) re-enqueued" in me.act("action-restart")
    assert sentinels.present(config.sentinel_dir) == {}
    wait_state(store, 11, "completed")

    queue.enqueue(jobs.tracked_fails_until_flag, side, 12, fixed)
    failed = wait_state(store, 12, "error")
    Path(fixed).touch()
    page = me.open(f"/tracked/{failed['id']}")
    assert "RuntimeError: flag file missing" in page
    me.shot("3-job-in-error")
    assert "re-enqueued as job" in me.act(f"action-resend-{failed['id']}")
    wait_state(store, 12, "completed")
    me.open(f"/tracked/{failed['id']}")
    me.shot("4-job-resent")

    queue.enqueue(jobs.tracked_until_flag, side, 13, flag)
    running = wait_state(store, 13, "running")
    os.killpg(daemon.proc.pid, signal.SIGKILL)  # the whole daemon dies: nobody frees its job
    daemon.wait(10)
    # a SIGKILL takes effect when each thread next runs: on a busy host a worker's main thread may
    # be a zombie (its pid dead) while its batch's watcher thread still holds the worker's journal
    # open, and a held journal is a live worker to the page; wait as the operator would reload
    wait_for(lambda: ops.status(store, config)["stalled"], what="the job judged stalled")
    page = me.open("/")
    assert "Stalled jobs" in page and "is dead" in page, (store.workers(), running, daemon.log())
    me.shot("5-stalled")
    assert me.act("action-reset-stalled").startswith("1 stalled job(s) reset to error")
    assert store.get_tracked(running["id"])["state"] == "error"
    me.open("/")
    me.shot("6-after-reset")
    print(f"\nscreenshots in {SHOTS}")
