"""Sample jobs for `make demo`: the delayed_job README's fleas, appended to a text file."""
from __future__ import annotations

import os
from pathlib import Path

from dj_daemon import job

OUT = Path(os.environ.get("FLEAS_FILE", "out/fleas.txt"))


@job(queue="animals")
def has_fleas(animal: str) -> None:
    """Append one line; the demo counts the lines afterwards."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a", encoding="utf-8") as out:
        out.write(f"my {animal} has fleas\n")


class Newsletter:
    """A perform-object, as delayed_job's ``enqueue NewsletterJob.new(text, emails)``."""

    max_attempts = 3

    def __init__(self, text: str, emails: list[str]) -> None:
        self.text = text
        self.emails = emails

    def perform(self) -> None:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        with OUT.open("a", encoding="utf-8") as out:
            for email in self.emails:
                out.write(f"newsletter to {email}: {self.text}\n")


@job(queue="zenodo", track="dataset_id", gate="defer")
def copy_to_zenodo(dataset_id: int) -> None:
    """A tracked long job: `long_jobs drain` would defer it; `long_jobs status` counts it."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a", encoding="utf-8") as out:
        out.write(f"dataset {dataset_id} copied to zenodo\n")
