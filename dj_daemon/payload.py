"""Serialization: callables and arguments to JSON handlers and back.

Handler shapes (never pickle or YAML):

- a function: ``{"target": "pkg.mod:func", "args": [...], "kwargs": {...}}``;
- a method on a receiver: ``{"receiver": R, "method": "upload", "args": [...], "kwargs": {...}}``
  where ``R`` is ``{"__dj_object__": "pkg.mod:Class", "attrs": {...}}`` (a
  perform-object, delayed_job's ``enqueue NewsletterJob.new(...)``) or a
  record reference ``{"__dj_record__": "pkg.mod:Model", "pk": [...]}``.

A target naming a class with a ``perform()`` method builds it from the
arguments when the job runs, then performs it. Either shape may carry
``"options": {"max_attempts": N}``, given at enqueue and honoured by the
worker that runs it over its own config and the job's code (``OPTIONS``);
handlers without options are unchanged, and cost no more to decode.

Arguments are JSON values; an SQLAlchemy ORM instance anywhere in them is
stored as a record reference and loaded fresh when the job runs. Every
import path is checked against the allow-list *before* it is imported, and
every attribute after the colon must stay inside it (``resolve``).
"""
from __future__ import annotations

import functools
import importlib
import json
import math
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Mapping, NamedTuple

from . import records
from .config import INT32
from .errors import DeserializationError, EnqueueError

OBJECT_KEY = "__dj_object__"
#: A perform-object's class may name, in this class attribute, the attribute holding the job's
#: display name (the Django runner's ``"task"``, ``mysite.tasks:send_mail``); its handler then
#: says so under ``DISPLAY_KEY``, and ``name_of`` shows that name instead of ``Class#method``.
DISPLAY_ATTRIBUTE = "display_attribute"
DISPLAY_KEY = "display"
RECORD_KEY = records.RECORD_KEY
#: What a handler's ``"options"`` object may hold.
OPTIONS = ("max_attempts", "unique_key")
Loader = Callable[[type, list[Any]], Any]


class Encoded(NamedTuple):
    """A handler and its display name (``pkg.mod:func``, ``pkg.mod:Class#method``)."""

    handler: str
    name: str


@functools.lru_cache(maxsize=1024)
def module_allowed(module: str | None, allowed: tuple[str, ...]) -> bool:
    """True when ``module`` is an allowed module or inside one (``"*"`` allows all).

    Cached: every enqueue and every job run asks it of the same few modules.
    """
    if module is None:
        return "*" in allowed
    return any(p == "*" or module == p or module.startswith(p + ".") for p in allowed)


def home_of(obj: Any) -> str | None:
    """The module that defined ``obj``: a function's or class's own (a method's is its class's
    module; a ``functools.wraps`` wrapper copies it), else its class's, for an instance."""
    return getattr(obj, "__module__", None)


def path_of(obj: Any) -> str:
    """``pkg.mod:qualname`` of a module-level function or class."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise EnqueueError(f"{obj!r} is not importable: use a module-level function or class")
    if module == "__main__":
        raise EnqueueError(f"{qualname} lives in __main__, which a worker cannot import")
    return f"{module}:{qualname}"


def resolve(path: str, allowed: tuple[str, ...], error: type[Exception] = DeserializationError,
            home: Callable[[Any], str | None] = home_of) -> Any:
    """Import ``pkg.mod:qual.name`` without leaving the allowed modules.

    The module, and names that are private or dunder (``__globals__``), are
    refused before anything is imported. Then the qualified name is walked one
    attribute at a time, and each step must stay inside: a module imported by
    an allowed one (``myapp.jobs:os.system``) and an object defined elsewhere
    (``myapp.jobs:loads`` after ``from json import loads``; ``home`` says where
    an object was defined) are refused, so a stored row cannot reach past the
    code the operator allowed.
    """
    if not isinstance(path, str) or ":" not in path:
        raise error(f"malformed import path {path!r}")
    module_name, _, qualname = path.partition(":")
    refusal = _refused_unimported(module_name, qualname, allowed)
    if refusal:
        raise error(refusal)
    try:
        obj: Any = sys.modules.get(module_name) or importlib.import_module(module_name)
        for step in qualname.split("."):
            obj = getattr(obj, step)
            refusal = _outside(obj, allowed, home)
            if refusal:
                raise error(f"{path} is refused: {step} {refusal}")
    except (ImportError, AttributeError, ValueError, TypeError) as exc:  # TypeError: "..relative"
        raise error(f"cannot import {path}: {exc}") from None
    return obj


@functools.lru_cache(maxsize=1024)
def _refused_unimported(module: str, qualname: str, allowed: tuple[str, ...]) -> str:
    """Why ``module:qualname`` is refused before anything is imported: a module outside the
    list, or a private or dunder step; empty when it is not.

    Cached, as every job asks it of the same few paths: the answer depends on
    the arguments only, so a refusal never outlives the allow-list it came from.
    """
    if not module_allowed(module, allowed):
        return f"module of {module}:{qualname} is not in allowed_modules"
    if qualname.startswith("_") or "._" in qualname:
        step = next(step for step in qualname.split(".") if step.startswith("_"))
        return f"{module}:{qualname} is refused: {step} is private"
    return ""


def _outside(obj: Any, allowed: tuple[str, ...], home: Callable[[Any], str | None]) -> str:
    """Why ``obj``, reached by one step, leaves the allowed modules; empty when it does not."""
    if isinstance(obj, ModuleType):
        return "is a module (name a module before the colon only)"
    module = home(obj)
    if not module_allowed(module, allowed):
        return f"is defined in {module or 'no module'}, which is not in allowed_modules"
    return ""


def _public_method(receiver: Any, name: str, allowed: tuple[str, ...], error: type[Exception]) -> Any:
    """``receiver.name``, refused unless public, callable and defined in an allowed module
    (a method inherited from a class defined elsewhere is outside)."""
    method = getattr(receiver, name, None)
    if not callable(method) or name.startswith("_"):
        raise error(f"{type(receiver).__name__} has no public method {name!r}")
    refusal = _outside(method, allowed, home_of)
    if refusal:
        raise error(f"{type(receiver).__name__}.{name} is refused: {name} {refusal}")
    return method


def encode_call(target: Any, args: tuple, kwargs: dict, allowed: tuple[str, ...],
                options: dict[str, Any] | None = None) -> Encoded:
    """The handler for ``target(*args, **kwargs)``; a perform-object is stored by its attributes,
    and a ``"pkg.mod:name"`` string as it is, checked against the list but not imported."""
    if isinstance(target, str):
        path = _allowed_path(_import_path(target), allowed)
    elif callable(getattr(target, "perform", None)) and not isinstance(target, type):
        if args or kwargs:
            raise EnqueueError("a perform-object takes no extra arguments (its attributes are stored)")
        return encode_method(target, "perform", (), {}, allowed, options)
    elif not callable(target):
        raise EnqueueError(f"{target!r} is neither callable nor has a perform() method")
    else:
        path = _allowed_path(path_of(target), allowed)
    return _encoded({"target": path, "args": encode_value(list(args), allowed),
                     "kwargs": encode_value(kwargs, allowed)}, options)


def encode_method(receiver: Any, method: str, args: tuple, kwargs: dict, allowed: tuple[str, ...],
                  options: dict[str, Any] | None = None) -> Encoded:
    """The handler for ``receiver.method(*args, **kwargs)``."""
    _public_method(receiver, method, allowed, EnqueueError)
    if records.is_record(receiver):
        encoded = encode_value(receiver, allowed)
    else:
        encoded = {OBJECT_KEY: _allowed_path(path_of(type(receiver)), allowed),
                   "attrs": encode_value(dict(vars(receiver)), allowed)}
        shown_by = getattr(type(receiver), DISPLAY_ATTRIBUTE, None)
        if isinstance(shown_by, str):
            encoded[DISPLAY_KEY] = shown_by
    return _encoded({"receiver": encoded, "method": method,
                     "args": encode_value(list(args), allowed), "kwargs": encode_value(kwargs, allowed)}, options)


def _import_path(text: str) -> str:
    """A string target as given, if it has the shape of ``pkg.mod:qual.name``."""
    module, colon, qualname = text.partition(":")
    if not colon or not all(part.isidentifier() for part in (*module.split("."), *qualname.split("."))):
        raise EnqueueError(f"string target {text!r} is not an import path such as 'myapp.jobs:send_mail'")
    return text


def _allowed_path(path: str, allowed: tuple[str, ...]) -> str:
    """``path``, refused now where a worker with the same allow-list would refuse its name."""
    module, _, qualname = path.partition(":")
    refusal = _refused_unimported(module, qualname, allowed)
    if refusal:
        raise EnqueueError(refusal)
    return path


def check_max_attempts(value: Any, error: type[Exception]) -> int:
    """``value`` if it can be a job's ``max_attempts`` (an integer from 1 to 2**31 - 1), else ``error``."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT32:
        return value
    raise error(f"max_attempts must be an integer from 1 to {INT32}, not {shown(value)}")


def shown(value: Any) -> str:
    """A bad value as an error line quotes it: short numbers and text as written, else its type."""
    text = repr(value)
    return text if isinstance(value, (int, float, str)) and len(text) <= 40 else type(value).__name__


def encode_value(value: Any, allowed: tuple[str, ...]) -> Any:
    """A JSON-able copy of ``value``; ORM records become references."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EnqueueError(f"argument {value!r} is not JSON-serializable")
        return value
    if isinstance(value, (list, tuple)):
        return [encode_value(item, allowed) for item in value]
    if isinstance(value, dict):
        return {_key(k): encode_value(v, allowed) for k, v in value.items()}
    if records.is_record(value):
        ref = records.reference(value)
        _allowed_path(path_of(type(value)), allowed)
        return ref
    raise EnqueueError(f"argument of type {type(value).__name__} is not JSON-serializable")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise EnqueueError(f"dict key {key!r} is not a string, so JSON would change it")
    if key in (RECORD_KEY, OBJECT_KEY):
        raise EnqueueError(f"dict key {key!r} is reserved")
    return key


#: Built once: ``json.dumps`` with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _encoded(data: dict, options: dict[str, Any] | None = None) -> Encoded:
    if options:
        data["options"] = options
    return Encoded(_ENCODER.encode(data), name_of(data))


def name_of(data: Mapping[str, Any]) -> str:
    """The display name of a decoded handler: its target; else the text in the receiver's attribute
    its handler names under ``DISPLAY_KEY`` (the task a Django ``TaskRun`` runs); else its
    receiver's class and method. Cheap: nothing is imported."""
    if "target" in data:
        return str(data["target"])
    receiver = data["receiver"]
    shown = _declared_name(receiver)
    if shown:
        return shown
    owner = receiver.get(OBJECT_KEY) or receiver[RECORD_KEY]
    return f"{owner}#{data['method']}"


def _declared_name(receiver: Mapping[str, Any]) -> str:
    """The text of the attribute a receiver declares as its name; empty when there is none, or
    when the handler holds something else there (a hand-written row's, say)."""
    attribute = receiver.get(DISPLAY_KEY)
    attrs = receiver.get("attrs")
    if not isinstance(attribute, str) or not isinstance(attrs, dict):
        return ""
    shown = attrs.get(attribute)
    return shown if isinstance(shown, str) else ""


@dataclass(frozen=True)
class Call:
    """A decoded handler, ready to run; ``owner`` carries the job's policy and hooks, ``name``
    is the job's display name (for logs and metrics)."""

    function: Callable[..., Any]
    args: list[Any]
    kwargs: dict[str, Any]
    owner: Any
    name: str
    max_attempts: int | None = None  # stored at enqueue: beats the job's code and the worker's config
    unique_key: str | None = None  # the key it holds (``unique``): released when it ends

    def run(self) -> Any:
        return self.function(*self.args, **self.kwargs)


def decode(handler: str | bytes, allowed: tuple[str, ...], load: Loader) -> Call:
    """The call a handler describes; any defect raises ``DeserializationError`` only."""
    try:
        data = json.loads(handler)
    except (ValueError, TypeError, RecursionError) as exc:
        raise DeserializationError(f"malformed handler: {exc}") from None
    # most handlers carry plain values: walking them for record references is then wasted
    records = (RECORD_KEY if isinstance(handler, str) else RECORD_KEY.encode()) in handler
    try:
        return _decode_call(data, allowed, load, records)
    except DeserializationError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise DeserializationError(f"malformed handler: {type(exc).__name__}: {exc}") from None


def _decode_call(data: Any, allowed: tuple[str, ...], load: Loader, records: bool) -> Call:
    if not isinstance(data, dict):
        raise DeserializationError("malformed handler: not a JSON object")
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise DeserializationError("malformed handler: args must be a list and kwargs an object")
    if "options" in data:
        max_attempts, unique_key = _stored_max_attempts(data["options"]), data["options"].get("unique_key")
    else:
        max_attempts = unique_key = None
    if records:
        args, kwargs = decode_value(args, allowed, load), decode_value(kwargs, allowed, load)
    if "target" in data:
        function = resolve(data["target"], allowed)
        if isinstance(function, type) and hasattr(function, "perform"):
            return _built(function, args, kwargs, allowed, str(data["target"]), max_attempts, unique_key)
        if not callable(function):
            raise DeserializationError(f"{data['target']} is not callable")
        return Call(function, args, kwargs, function, str(data["target"]), max_attempts, unique_key)
    receiver = _decode_receiver(data["receiver"], allowed, load)
    method = _public_method(receiver, str(data["method"]), allowed, DeserializationError)
    return Call(method, args, kwargs, receiver, name_of(data), max_attempts, unique_key)


def _stored_max_attempts(options: Any) -> int | None:
    """The handler's ``options``, checked: a value this worker cannot honour makes the job fail
    for good with one line (as any defect of a handler), never a crash or a silent default."""
    if not isinstance(options, dict) or not set(options) <= set(OPTIONS):
        raise DeserializationError(f"malformed handler: options must be an object of {', '.join(OPTIONS)}")
    if not isinstance(options.get("unique_key", ""), str):
        raise DeserializationError("malformed handler: options: unique_key must be text")
    if options.get("max_attempts") is None:
        return None
    try:
        return check_max_attempts(options["max_attempts"], DeserializationError)
    except DeserializationError as exc:
        raise DeserializationError(f"malformed handler: options: {exc}") from None


def _built(cls: type, args: list[Any], kwargs: dict[str, Any], allowed: tuple[str, ...], name: str,
           max_attempts: int | None, unique_key: str | None) -> Call:
    """A perform class named as a target, built from the arguments as delayed_job loads its
    payload object: a constructor that raises fails the job for good, as any handler that
    cannot load; its hooks and policy are then the instance's, as a perform-object's."""
    try:
        obj = cls(*args, **kwargs)
    except Exception as exc:
        raise DeserializationError(f"cannot build {name}: {type(exc).__name__}: {exc}") from None
    method = _public_method(obj, "perform", allowed, DeserializationError)
    return Call(method, [], {}, obj, name, max_attempts, unique_key)


def _decode_receiver(data: Any, allowed: tuple[str, ...], load: Loader) -> Any:
    """A perform-object rebuilt from its attributes, or a record loaded fresh; nothing else."""
    if isinstance(data, dict) and OBJECT_KEY in data:
        cls = resolve(data[OBJECT_KEY], allowed)
        if not isinstance(cls, type):
            raise DeserializationError(f"{data[OBJECT_KEY]} is not a class")
        obj = cls.__new__(cls)
        obj.__dict__.update(decode_value(data.get("attrs", {}), allowed, load))
        return obj
    if isinstance(data, dict) and RECORD_KEY in data:
        return decode_value(data, allowed, load)
    raise DeserializationError("malformed handler: receiver is neither object nor record")


def decode_value(value: Any, allowed: tuple[str, ...], load: Loader) -> Any:
    """Undo ``encode_value``: record references are loaded through ``load``."""
    if isinstance(value, list):
        return [decode_value(item, allowed, load) for item in value]
    if isinstance(value, dict):
        if RECORD_KEY in value:
            cls = resolve(value[RECORD_KEY], allowed)
            if not records.is_record_class(cls):
                raise DeserializationError(f"{value[RECORD_KEY]} is not a mapped ORM class")
            return load(cls, list(value["pk"]))
        return {k: decode_value(v, allowed, load) for k, v in value.items()}
    return value
