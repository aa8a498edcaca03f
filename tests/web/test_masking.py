"""Secrets in payloads are masked before a page shows them (pure: no database)."""
from __future__ import annotations

import json

from long_jobs.web.masking import MASK, masked_payload


def test_values_of_secret_keys_are_masked_at_any_depth() -> None:
    payload = json.dumps({"target": "m:f", "args": [{"Password": "p1", "nested": {"client_secret": "p2"}}],
                          "kwargs": {"api_key": ["p3"], "Authorization": "Bearer p4", "token": 5, "key": "p6",
                                     "monkey": "visible", "keyboard": "visible", "session_id": "p7"}})
    shown = masked_payload(payload)
    for secret in ("p1", "p2", "p3", "p4", '"token": 5', "p6", "p7"):
        assert secret not in shown
    assert shown.count(MASK) == 7 and shown.count("visible") == 2


def test_secrets_inside_strings_and_urls_and_text_that_is_not_json() -> None:
    shown = masked_payload(json.dumps({"args": ["password=hunter2 user=bob", "mysql://app:pw9@db/x"]}))
    assert "hunter2" not in shown and "pw9" not in shown and "user=bob" in shown and "mysql://app:" in shown
    assert masked_payload("not json, token: abc123 and more") == f"not json, token: {MASK} and more"
    assert masked_payload("") == ""
