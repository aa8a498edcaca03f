"""A real process holding a worker's journal, as a daemon worker does (``forked.run_worker``)."""
from __future__ import annotations

import subprocess
import sys

#: claims the journal of ``argv[2]`` (``{pid}`` in it: its own pid) in ``argv[1]``, keeps it, prints the name
HOLDER = ("import os, sys, time\n"
          "from dj_daemon import journal\n"
          "name = sys.argv[2].format(pid=os.getpid())\n"
          "assert journal.claim(sys.argv[1], name) is not None\n"
          "journal.Journal(sys.argv[1], name)\n"
          "print(name, flush=True)\n"
          "time.sleep(120)\n")


def hold(folder: str, worker: str) -> tuple[subprocess.Popen, str]:
    """A process holding ``worker``'s journal in ``folder`` (``{pid}`` in ``worker``: the holder's
    pid), once it holds it; and the name it holds. Kill it to let go."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, folder, worker], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    name = proc.stdout.readline().strip()
    assert name, "the holder ended without holding the journal"
    return proc, name
