"""Importing this module leaves a trace, so a test can prove it was never imported."""
import os

if os.environ.get("DJ_TEST_IMPORT_TRACE"):
    with open(os.environ["DJ_TEST_IMPORT_TRACE"], "a", encoding="utf-8") as trace:
        trace.write("imported\n")


def run() -> None:
    """A target that must never run."""
