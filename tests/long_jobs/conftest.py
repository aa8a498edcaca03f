"""Fixtures for long_jobs: a real sentinel folder next to the test's database."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import bin_path


@pytest.fixture
def sentinel_dir(config) -> Path:
    path = Path(config.sentinel_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def long_jobs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("long_jobs"), *args], env=env, capture_output=True, text=True, timeout=120)
