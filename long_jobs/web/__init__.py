"""The operators' web page: ``long_jobs web``, or ``create_app(config)`` to mount in an existing app.

Needs the ``web`` extra (Flask, waitress): ``pip install 'dj-daemon[web]'``.
"""
from __future__ import annotations

from .app import create_app, serve

__all__ = ["create_app", "serve"]
