"""Fixtures for the web page: the app on the test's database, a client, and helpers to act as a browser.

Skip none: the page needs the ``web`` extra, which the ``test`` extra installs.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dj_daemon.api import Queue
from dj_daemon.config import Config
from long_jobs.web import create_app

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
#: A pid no process can have: above Linux's largest pid_max (2**22). A small one (4242) is
#: someone's once pids wrap, as they do within a CI run here (pid_max 32768).
NO_SUCH_PID = 99_999_999


@pytest.fixture
def sentinel_dir(config: Config) -> Path:
    path = Path(config.sentinel_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def make_app(store, sentinel_dir):
    """``make_app(**settings)``: the page on the test's store, with these ``[web]`` settings."""
    def make(config: Config, **settings: Any):
        app = create_app(config.replace(**settings), store=store)
        app.testing = True
        return app
    return make


@pytest.fixture
def app(make_app, config):
    return make_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def queue(config, store) -> Queue:
    return Queue(config, store)


def confirm_and_post(client: Any, name: str, subject_id: int | None = None, **headers: str) -> Any:
    """What a person does: open the confirmation page, then press its button (the form's token)."""
    query = f"?id={subject_id}" if subject_id is not None else ""
    page = client.get(f"/actions/{name}{query}", headers=headers)
    assert page.status_code == 200, page.get_data(as_text=True)
    token = TOKEN.search(page.get_data(as_text=True)).group(1)
    form = {"csrf_token": token, **({"id": str(subject_id)} if subject_id is not None else {})}
    return client.post(f"/actions/{name}", data=form, headers=headers)
