"""``processes.alive``: a zombie has ended, whatever ``kill(pid, 0)`` answers."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dj_daemon.processes import alive
from tests.process.daemon import wait_for


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["true"])  # not waited for: once it exits, a zombie until we reap it
    try:
        wait_for(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
                 what="the child a zombie")
        assert not alive(child.pid)
        assert alive(os.getpid())
    finally:
        child.wait()
    assert not alive(child.pid)
