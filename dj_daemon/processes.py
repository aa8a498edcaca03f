"""Small facts about processes, shared by the supervisor, the init.d mode, the tests and the bench."""
from __future__ import annotations

import os
import signal
from pathlib import Path


def alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (even if it is not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def children_of(parent: int) -> list[int]:
    """The live (not zombie) children of ``parent``, read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[1]) == parent:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def describe_exit(status: int) -> tuple[str, bool]:
    """``("killed by SIGKILL", True)`` from a wait status; the flag says whether it ended abnormally."""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}", True
    code = os.WEXITSTATUS(status)
    return f"exited with code {code}", code != 0
