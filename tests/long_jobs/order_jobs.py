"""Jobs that record what they see: steps of one dataset's replication, and what status calls running."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dj_daemon import job
from tests.jobs import record


@job(track="dataset_id", gate="defer", queue="replication")
def copy_step(path: str, dataset_id: int, step: int) -> None:
    """One step of a deferrable tracked copy: the steps of a dataset form its strand."""
    record(path, f"start-{dataset_id}.{step}")
    record(path, f"end-{dataset_id}.{step}")


def record_tracked_running(path: str) -> None:
    """Record which tracked jobs ``long_jobs status`` calls running while this job runs."""
    shown = subprocess.run([str(Path(sys.executable).with_name("long_jobs")), "status", "--json"],
                           capture_output=True, text=True, timeout=60).stdout
    record(path, "running:" + (",".join(row["identifier"] for row in json.loads(shown)["running"]) or "none"))
