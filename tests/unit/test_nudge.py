"""Nudges: sent while a daemon listens on this host; after a refusal, quiet for ``poll_interval``."""
from __future__ import annotations

import time
import uuid

from dj_daemon.config import Config
from dj_daemon.nudge import Nudger, drain, listen


def config() -> Config:
    return Config(url=f"sqlite:////tmp/nudge-{uuid.uuid4().hex}.sqlite3", poll_interval=0.2)


def test_every_enqueue_nudges_a_listening_daemon() -> None:
    cfg = config()
    sock = listen(cfg)
    try:
        nudge = Nudger(cfg)
        for _ in range(3):
            nudge()
            assert drain(sock)
    finally:
        sock.close()


def test_without_a_listener_nudges_pause_for_poll_interval() -> None:
    cfg = config()
    nudge = Nudger(cfg)
    nudge()  # refused: nobody listens
    sock = listen(cfg)
    try:
        nudge()
        assert not drain(sock), "a daemon started within poll_interval is left to its poll"
        time.sleep(cfg.poll_interval + 0.05)
        nudge()
        assert drain(sock)
    finally:
        sock.close()
