"""A task defined outside the test app; ``taskapp.tasks`` imports it, as a project may."""
from __future__ import annotations

from pathlib import Path

from django.tasks import task


@task
def touch(path: str) -> None:
    """Creates ``path``: the file proves the task ran."""
    Path(path).touch()
