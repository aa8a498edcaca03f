"""The test project's tasks; each run leaves a trace the tests can read."""
from __future__ import annotations

import os
import time
from typing import Any

from django.tasks import TaskContext, task

from tests.django.elsewhere import touch  # noqa: F401  (defined outside taskapp.tasks)
from tests.jobs import record as append


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def record(path: str, token: str) -> str:
    """Append ``token`` to ``path``: the file gives the order tasks ran in."""
    append(path, token)
    return token


@task
def fails(message: str) -> None:
    raise ValueError(message)


@task(takes_context=True)
def fails_once(context: TaskContext) -> dict[str, Any]:
    """Fails on its first attempt; reports the attempt it succeeded on."""
    if context.attempt == 1:
        raise RuntimeError("first attempt fails")
    return {"attempt": context.attempt, "result_id": context.task_result.id}


@task
def wait_for(path: str) -> str:
    """Runs until ``path`` exists (at most 20 s): the test sees it RUNNING meanwhile."""
    deadline = time.monotonic() + 20
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "released"
