"""Small facts about processes, shared by the supervisor and the init.d mode."""
from __future__ import annotations

import os
import signal


def alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (even if it is not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_exit(status: int) -> tuple[str, bool]:
    """``("killed by SIGKILL", True)`` from a wait status; the flag says whether it ended abnormally."""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}", True
    code = os.WEXITSTATUS(status)
    return f"exited with code {code}", code != 0
