"""Small facts about processes, shared by the supervisor, the init.d mode, the tests and the bench."""
from __future__ import annotations

import os
import signal
from pathlib import Path


def alive(pid: int) -> bool:
    """True when a process with ``pid`` exists and has not ended (even if it is not ours to signal).

    A zombie has ended: it waits only for its parent (or, orphaned, for an
    init that may never reap it) to collect its exit status, and still
    answers ``kill(pid, 0)``.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat(Path(f"/proc/{pid}/stat"))
    if fields is None:  # gone since, or a system without /proc, where the signal's answer is all we have
        return not Path("/proc/self/stat").exists()
    return fields[0] not in ENDED


def children_of(parent: int) -> list[int]:
    """The live (not zombie) children of ``parent``, read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(stat)
        if fields is not None and fields[0] not in ENDED and int(fields[1]) == parent:
            pids.append(int(stat.parent.name))
    return sorted(pids)


#: /proc states of a process that has ended: zombie, dead
ENDED = ("Z", "X")


def _stat(path: Path) -> list[str] | None:
    """The fields of a /proc/<pid>/stat after the command name (state, ppid, ...); None where
    there is no such file (the process is gone, or no /proc)."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def describe_exit(status: int) -> tuple[str, bool]:
    """``("killed by SIGKILL", True)`` from a wait status; the flag says whether it ended abnormally."""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}", True
    code = os.WEXITSTATUS(status)
    return f"exited with code {code}", code != 0
