"""Django's tasks framework (``django.tasks``, Django 6+) on dj-daemon's queue.

``TASKS = {"default": {"BACKEND": "dj_daemon.contrib.django.DelayedJobBackend"}}``;
see ``backend`` for the options and the README's "Django" section for the daemon's side.
"""
from .backend import DelayedJobBackend

__all__ = ["DelayedJobBackend"]
