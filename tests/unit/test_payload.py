"""Serialization without a database: shapes, refusals, and decoding's only error type."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from dj_daemon import payload
from dj_daemon.errors import DeserializationError, EnqueueError
from tests import jobs

ALLOWED = ("tests",)


def no_records(cls, pk):
    raise AssertionError("no record expected")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text().filter(lambda k: not k.startswith("__dj_")), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(args=st.lists(json_values, max_size=4), kwargs=st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), json_values, max_size=3))
def test_call_round_trips_every_json_shape(args, kwargs) -> None:
    handler = payload.encode_call(jobs.record, tuple(args), kwargs, ALLOWED).handler
    call = payload.decode(handler, ALLOWED, no_records)
    assert call.function is jobs.record and call.args == args and call.kwargs == kwargs


@settings(max_examples=300, deadline=None)
@given(st.binary() | st.text())
def test_decoding_arbitrary_input_raises_only_our_error(data) -> None:
    try:
        payload.decode(data, ALLOWED, no_records)
    except DeserializationError:
        pass


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_decoding_arbitrary_json_raises_only_our_error(value) -> None:
    for doc in (value, {"target": value, "args": value}, {"receiver": value, "method": value}):
        try:
            payload.decode(json.dumps(doc), ALLOWED, no_records)
        except DeserializationError:
            pass


def test_perform_object_round_trip() -> None:
    handler = payload.encode_call(jobs.Newsletter("/p", "hi", ["a"]), (), {}, ALLOWED).handler
    call = payload.decode(handler, ALLOWED, no_records)
    assert isinstance(call.owner, jobs.Newsletter) and call.owner.emails == ["a"]
    assert call.function.__name__ == "perform"


@pytest.mark.parametrize("encoded", [
    payload.encode_call(jobs.record, ("/p", "t"), {}, ALLOWED),
    payload.encode_call(jobs.Newsletter("/p", "hi", ["a"]), (), {}, ALLOWED),
    payload.encode_method(jobs.Newsletter("/p", "hi", []), "perform", (), {}, ALLOWED),
], ids=["function", "perform-object", "method"])
def test_encoded_name_is_the_handlers_display_name(encoded) -> None:
    from dj_daemon.job import display_name

    assert encoded.name == display_name(encoded.handler) != "<malformed>"


@pytest.mark.parametrize("target, args, message", [
    (lambda: None, (), "not importable"),
    (print, (), "not in allowed_modules"),
    (jobs.record, (object(),), "argument of type object is not JSON-serializable"),
    (jobs.record, (float("nan"),), "not JSON-serializable"),
    (jobs.record, ({1: "a"},), "is not a string"),
    (jobs.record, ({"__dj_record__": "x"},), "reserved"),
    (42, (), "neither callable"),
])
def test_refused_at_enqueue_with_one_line(target, args, message) -> None:
    with pytest.raises(EnqueueError, match=message) as info:
        payload.encode_call(target, args, {}, ALLOWED)
    assert "\n" not in str(info.value)


def test_disallowed_module_is_never_imported(tmp_path, monkeypatch) -> None:
    trace = tmp_path / "trace"
    monkeypatch.setenv("DJ_TEST_IMPORT_TRACE", str(trace))
    with pytest.raises(DeserializationError, match="not in allowed_modules"):
        payload.resolve("tests.side_effect_module:run", ("tests.jobs",))
    assert not trace.exists()


@pytest.mark.parametrize("path, allowed, ok", [
    ("app.jobs:f", ("app",), True), ("app:f", ("app",), True), ("apple:f", ("app",), False),
    ("app.jobs:f", ("app.jobs",), True), ("os:system", ("*",), True), ("os:system", (), False),
])
def test_allow_list_is_a_module_prefix(path, allowed, ok) -> None:
    assert payload.is_allowed(path, allowed) is ok


@pytest.mark.parametrize("receiver", [{"x": 1}, [1, 2], "text", 5, None])
def test_a_receiver_must_be_an_object_or_a_record(receiver) -> None:
    with pytest.raises(DeserializationError, match="receiver is neither object nor record"):
        payload.decode(json.dumps({"receiver": receiver, "method": "keys"}), ALLOWED, no_records)
