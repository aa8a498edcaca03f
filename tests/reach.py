"""What an allowed module defines, and what it only imports: the allow-list tests walk both.

With ``allowed_modules = tests.reach``, a path may reach ``Helper``, its
methods and ``mailer.send``, and nothing this module imported.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
from json import loads  # noqa: F401  (defined in json)
from os import system  # noqa: F401  (defined in posix)
from subprocess import Popen  # noqa: F401  (a class defined in subprocess)

from tests.jobs import record  # defined in tests.jobs, which may be outside the list


class Helper:
    """Defined here: its methods are reachable as ``tests.reach:Helper.method``."""

    popen = subprocess.Popen  # a class attribute pointing outside

    def method(self) -> str:
        return "method"

    @staticmethod
    def static() -> str:
        return "static"

    @classmethod
    def klass(cls) -> str:
        return cls.__name__


class Mailer:
    """The class of a module-level instance: it decides where ``mailer`` lives."""

    def send(self, path: str, text: str) -> None:
        record(path, text)


mailer = Mailer()
shell = functools.partial(os.system)  # an instance of a class defined in functools


class Decoder(json.JSONDecoder):
    """A perform-object class whose public methods are all inherited from json."""
