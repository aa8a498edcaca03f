"""Serialization without a database: shapes, refusals, and decoding's only error type."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings, strategies as st

from dj_daemon import payload
from dj_daemon.errors import DeserializationError, EnqueueError
from tests import jobs, reach

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


REACH = ("tests.reach",)


@pytest.mark.parametrize("path, why", [
    ("tests.reach:os.system", "os is a module"),
    ("tests.reach:subprocess.Popen", "subprocess is a module"),
    ("tests.reach:system", "system is defined in posix, which is not in allowed_modules"),
    ("tests.reach:loads", "loads is defined in json,"),
    ("tests.reach:Popen", "Popen is defined in subprocess"),
    ("tests.reach:record", "record is defined in tests.jobs"),
    ("tests.reach:shell", "shell is defined in functools"),
    ("tests.reach:Helper.popen", "popen is defined in subprocess"),
    ("tests.reach:Decoder.decode", "decode is defined in json.decoder"),
    ("tests.reach:mailer.send.__func__", "__func__ is private"),
    ("tests.reach:Helper.__init__", "__init__ is private"),
    ("tests.reach:Helper.method.__globals__", "__globals__ is private"),
    ("tests.reach:mailer.__class__", "__class__ is private"),
    ("tests.reach:__builtins__", "__builtins__ is private"),
])
def test_a_path_cannot_walk_out_of_the_allowed_modules(path, why) -> None:
    """The module part is allowed; every step after it must stay inside too."""
    with pytest.raises(DeserializationError) as info:
        payload.resolve(path, REACH)
    assert str(info.value).startswith(f"{path} is refused: {why}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("path, expected", [
    ("tests.reach:Helper", reach.Helper), ("tests.reach:Helper.method", reach.Helper.method),
    ("tests.reach:Helper.static", reach.Helper.static), ("tests.reach:Helper.klass", reach.Helper.klass),
    ("tests.reach:mailer", reach.mailer), ("tests.reach:mailer.send", reach.mailer.send),
    ("tests.reach:Decoder", reach.Decoder),
])
def test_what_an_allowed_module_defines_is_reached(path, expected) -> None:
    assert payload.resolve(path, REACH) == expected


def test_a_refusal_depends_on_the_list_asked_not_on_an_earlier_answer() -> None:
    with pytest.raises(DeserializationError, match="record is defined in tests.jobs"):
        payload.resolve("tests.reach:record", REACH)
    assert payload.resolve("tests.reach:record", (*REACH, "tests.jobs")) is jobs.record
    with pytest.raises(DeserializationError, match="record is defined in tests.jobs"):
        payload.resolve("tests.reach:record", REACH)


@pytest.mark.parametrize("path", ["tests.reach:print", "..reach:Helper", ":Helper", "tests.reach:",
                                  "tests.reach:Helper."])
def test_what_cannot_be_imported_is_one_line(path) -> None:
    """Builtins are not module attributes; a relative or empty name is not an import path."""
    with pytest.raises(DeserializationError, match=f"cannot import {re.escape(path)}: .") as info:
        payload.resolve(path, ("*",))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("handler, why", [
    ({"target": "tests.reach:os.system", "args": ["true"]}, "os is a module"),
    ({"target": "tests.reach:mailer.send.__globals__"}, "__globals__ is private"),
    ({"receiver": {"__dj_object__": "tests.reach:Popen", "attrs": {}}, "method": "wait"},
     "Popen is defined in subprocess"),
    ({"receiver": {"__dj_object__": "tests.reach:os.PathLike", "attrs": {}}, "method": "x"}, "os is a module"),
    ({"receiver": {"__dj_object__": "tests.reach:Decoder", "attrs": {}}, "method": "decode", "args": ["1"]},
     "Decoder.decode is refused: decode is defined in json.decoder"),
    ({"target": "tests.reach:Helper.static", "args": [{"__dj_record__": "tests.reach:Popen", "pk": [1]}]},
     "Popen is defined in subprocess"),
    ({"target": "tests.reach:Helper.static", "args": [{"__dj_record__": "tests.reach:Helper", "pk": [1]}]},
     "tests.reach:Helper is not a mapped ORM class"),
], ids=["target", "dunder", "receiver class", "receiver via module", "inherited method", "record class",
        "record not mapped"])
def test_a_handler_that_walks_out_is_refused_before_anything_runs(handler, why) -> None:
    with pytest.raises(DeserializationError, match=re.escape(why)):
        payload.decode(json.dumps(handler), REACH, no_records)


def test_refused_at_enqueue_as_a_worker_would_refuse_it() -> None:
    """A private target would be refused at run time, so it is refused at enqueue, not queued to fail."""
    with pytest.raises(EnqueueError, match="tests.jobs:_photo_sessions is refused: _photo_sessions is private"):
        payload.encode_call(jobs._photo_sessions, ("sqlite://",), {}, ALLOWED)
    with pytest.raises(EnqueueError, match="Decoder.decode is refused: decode is defined in json.decoder"):
        payload.encode_method(reach.Decoder(), "decode", ("1",), {}, REACH)
    with pytest.raises(EnqueueError, match="Newsletter has no public method '__init__'"):
        payload.encode_method(jobs.Newsletter("/p", "hi", []), "__init__", ("/p", "hi", []), {}, ALLOWED)
    assert payload.encode_call(reach.Helper.static, (), {}, REACH).name == "tests.reach:Helper.static"


@pytest.mark.parametrize("module, allowed, ok", [
    ("app.jobs", ("app",), True), ("app", ("app",), True), ("apple", ("app",), False),
    ("app.jobs", ("app.jobs",), True), ("os", ("*",), True), ("os", (), False),
    (None, ("app",), False), (None, ("*",), True),
])
def test_allow_list_is_a_module_prefix(module, allowed, ok) -> None:
    assert payload.module_allowed(module, allowed) is ok


@pytest.mark.parametrize("receiver", [{"x": 1}, [1, 2], "text", 5, None])
def test_a_receiver_must_be_an_object_or_a_record(receiver) -> None:
    with pytest.raises(DeserializationError, match="receiver is neither object nor record"):
        payload.decode(json.dumps({"receiver": receiver, "method": "keys"}), ALLOWED, no_records)


def test_options_round_trip_and_are_absent_unless_given() -> None:
    plain = payload.encode_call(jobs.record, ("/p", "t"), {}, ALLOWED)
    assert "options" not in json.loads(plain.handler)
    assert payload.decode(plain.handler, ALLOWED, no_records).max_attempts is None
    for encoded in (payload.encode_call(jobs.record, ("/p", "t"), {}, ALLOWED, {"max_attempts": 3}),
                    payload.encode_call(jobs.Newsletter("/p", "hi", []), (), {}, ALLOWED, {"max_attempts": 3})):
        assert payload.decode(encoded.handler, ALLOWED, no_records).max_attempts == 3


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_decoding_arbitrary_options_raises_only_our_error(value) -> None:
    doc = {"target": "tests.jobs:noop", "args": [], "kwargs": {}, "options": value}
    try:
        call = payload.decode(json.dumps(doc), ALLOWED, no_records)
    except DeserializationError:
        return
    assert call.max_attempts is None or 1 <= call.max_attempts < 2**31


def test_string_target_is_checked_not_imported(tmp_path, monkeypatch) -> None:
    trace = tmp_path / "imported.txt"
    monkeypatch.setenv("DJ_TEST_IMPORT_TRACE", str(trace))
    encoded = payload.encode_call("tests.side_effect_module:run", (1,), {}, ("tests",))
    assert json.loads(encoded.handler)["target"] == encoded.name == "tests.side_effect_module:run"
    assert not trace.exists()


class Named:
    """A perform-object that names its job after what it runs, as the Django runner does."""

    display_attribute = "task"

    def __init__(self, task: str) -> None:
        self.task = task

    def perform(self) -> None:
        pass


def test_a_receiver_declaring_its_display_attribute_is_shown_by_it() -> None:
    """Logs, metrics and ``jobs list`` show ``mysite.tasks:send_mail``, not ``...Named#perform``."""
    from dj_daemon.job import display_name

    encoded = payload.encode_method(Named("mysite.tasks:send_mail"), "perform", (), {}, ALLOWED)
    assert json.loads(encoded.handler)["receiver"]["display"] == "task"
    assert encoded.name == display_name(encoded.handler) == "mysite.tasks:send_mail"
    assert payload.decode(encoded.handler, ALLOWED, no_records).name == "mysite.tasks:send_mail"


@pytest.mark.parametrize("receiver", [
    {"__dj_object__": "tests.unit.test_payload:Named", "attrs": {"task": 7}, "display": "task"},
    {"__dj_object__": "tests.unit.test_payload:Named", "attrs": {}, "display": "task"},
    {"__dj_object__": "tests.unit.test_payload:Named", "attrs": {"task": "a:b"}, "display": ["task"]},
    {"__dj_object__": "tests.unit.test_payload:Named", "attrs": "task", "display": "task"},
    {"__dj_object__": "tests.unit.test_payload:Named", "attrs": {"task": ""}, "display": "task"},
], ids=["not-text", "missing", "odd-declaration", "attrs-not-object", "empty"])
def test_a_malformed_declared_name_falls_back_to_class_and_method(receiver) -> None:
    """A hand-written or damaged handler never makes naming raise: the usual name is shown."""
    assert payload.name_of({"receiver": receiver, "method": "perform"}) == "tests.unit.test_payload:Named#perform"


@settings(max_examples=200, deadline=None)
@given(json_values, json_values)
def test_naming_arbitrary_receivers_never_raises_past_display_name(attrs, declared) -> None:
    from dj_daemon.job import display_name

    handler = json.dumps({"receiver": {"__dj_object__": "x:Y", "attrs": attrs, "display": declared},
                          "method": "perform"})
    assert isinstance(display_name(handler), str)
