"""Jobs the recurring tests schedule: each run leaves a line in a file, the jobs' own count."""
from __future__ import annotations

import os

from dj_daemon import job
from dj_daemon.schedule import recurring


def record(path: str, *words: str) -> None:
    """Append one line per run: the worker's pid and the words it was given."""
    with open(path, "a", encoding="utf-8") as file:
        file.write(" ".join([str(os.getpid()), *words]) + "\n")


@recurring("*/5 * * * *", name="tests-every-five-minutes", args=["/dev/null"], missed="run_once")
@job(queue="recurring")
def declared(path: str) -> None:
    """A job declared recurring in code, its queue from ``@job``."""
    record(path)
