"""A command run on a real pseudo-terminal (python's ``pty``), as an operator's shell runs it."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time


def run_on_terminal(args: list[str], env: dict[str, str], answer: str = "", timeout: float = 60.0,
                    columns: int = 200) -> tuple[int, str]:
    """Run ``args`` with stdin, stdout and stderr on a new terminal ``columns`` wide; type ``answer``
    once it prints something; the exit code and everything it wrote (``\\r`` kept)."""
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    env = {**env, "COLUMNS": str(columns), "TERM": "xterm"}
    proc = subprocess.Popen(args, env=env, stdin=follower, stdout=follower, stderr=follower, close_fds=True,
                            start_new_session=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the terminal's last holder is gone
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if answer:
                    os.write(leader, answer.encode())
                    answer = ""
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return code, b"".join(chunks).decode(errors="replace")
