"""Payloads shown with their secrets masked: the values of keys that name a password, a token, a key.

A JSON payload is walked and every value under such a key is replaced,
whatever it holds. Strings in it, and text that is not JSON, are masked by
the same names in ``key=value`` and ``"key": value`` forms, and URLs lose
their password (``scheme://user:********@host``).
"""
from __future__ import annotations

import json
import re
from typing import Any

MASK = "********"
SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|api[_-]?key|(^|[_-])key$|private|authorization|"
                        r"credential|cookie|session|signature", re.IGNORECASE)
SECRET_IN_TEXT = re.compile(
    r"""(?P<key>["']?[\w-]*(?:password|passwd|secret|token|key|authorization|credential)[\w-]*["']?\s*[:=]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&}]+)""", re.IGNORECASE)

URL_PASSWORD = re.compile(r"(?P<key>\w[\w+.-]*://[^:/@\s]*:)(?P<value>[^@\s]+)(?=@)")


def is_secret(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def masked_value(value: Any) -> Any:
    """``value`` with every secret key's value replaced by ``MASK``, at any depth."""
    if isinstance(value, dict):
        return {k: MASK if is_secret(str(k)) else masked_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked_value(v) for v in value]
    return masked_text(value) if isinstance(value, str) else value


def masked_text(text: str) -> str:
    """``text`` with the values after secret names, and URLs' passwords, replaced."""
    for pattern in (SECRET_IN_TEXT, URL_PASSWORD):
        text = pattern.sub(lambda m: m.group("key") + MASK, text)
    return text


def masked_payload(text: str | None) -> str:
    """A stored payload as indented JSON with secrets masked; masked text when it is not JSON."""
    if not text:
        return ""
    try:
        return json.dumps(masked_value(json.loads(text)), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return masked_text(text)
