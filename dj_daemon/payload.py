"""Serialization: callables and arguments to JSON handlers and back.

Handler shapes (never pickle or YAML):

- a function: ``{"target": "pkg.mod:func", "args": [...], "kwargs": {...}}``;
- a method on a receiver: ``{"receiver": R, "method": "upload", "args": [...], "kwargs": {...}}``
  where ``R`` is ``{"__dj_object__": "pkg.mod:Class", "attrs": {...}}`` (a
  perform-object, delayed_job's ``enqueue NewsletterJob.new(...)``) or a
  record reference ``{"__dj_record__": "pkg.mod:Model", "pk": [...]}``.

Arguments are JSON values; an SQLAlchemy ORM instance anywhere in them is
stored as a record reference and loaded fresh when the job runs. Every
import path is checked against the allow-list *before* it is imported.
"""
from __future__ import annotations

import functools
import importlib
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

from . import records
from .errors import DeserializationError, EnqueueError

OBJECT_KEY = "__dj_object__"
RECORD_KEY = records.RECORD_KEY
Loader = Callable[[type, list[Any]], Any]


class Encoded(NamedTuple):
    """A handler and its display name (``pkg.mod:func``, ``pkg.mod:Class#method``)."""

    handler: str
    name: str


@functools.lru_cache(maxsize=1024)
def is_allowed(path: str, allowed: tuple[str, ...]) -> bool:
    """True when the module of ``path`` ("pkg.mod:name") is under an allowed prefix.

    Cached: every enqueue asks it of the same few paths, and so does every job run.
    """
    module = path.partition(":")[0]
    return any(p == "*" or module == p or module.startswith(p + ".") for p in allowed)


def path_of(obj: Any) -> str:
    """``pkg.mod:qualname`` of a module-level function or class."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise EnqueueError(f"{obj!r} is not importable: use a module-level function or class")
    if module == "__main__":
        raise EnqueueError(f"{qualname} lives in __main__, which a worker cannot import")
    return f"{module}:{qualname}"


def resolve(path: str, allowed: tuple[str, ...], error: type[Exception] = DeserializationError) -> Any:
    """Import ``pkg.mod:qual.name``, refusing modules outside the allow-list unimported."""
    if not isinstance(path, str) or ":" not in path:
        raise error(f"malformed import path {path!r}")
    if not is_allowed(path, allowed):
        raise error(f"module of {path} is not in allowed_modules")
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise error(f"cannot import {path}: {exc}") from None
    return obj


def encode_call(target: Any, args: tuple, kwargs: dict, allowed: tuple[str, ...]) -> Encoded:
    """The handler for ``target(*args, **kwargs)``; a perform-object is stored by its attributes."""
    if callable(getattr(target, "perform", None)) and not isinstance(target, type):
        if args or kwargs:
            raise EnqueueError("a perform-object takes no extra arguments")
        return encode_method(target, "perform", (), {}, allowed)
    if not callable(target):
        raise EnqueueError(f"{target!r} is neither callable nor has a perform() method")
    path = _checked_path(target, allowed)
    return _encoded({"target": path, "args": encode_value(list(args), allowed),
                     "kwargs": encode_value(kwargs, allowed)})


def encode_method(receiver: Any, method: str, args: tuple, kwargs: dict, allowed: tuple[str, ...]) -> Encoded:
    """The handler for ``receiver.method(*args, **kwargs)``."""
    if not callable(getattr(receiver, method, None)):
        raise EnqueueError(f"{type(receiver).__name__} has no method {method!r}")
    if records.is_record(receiver):
        encoded = encode_value(receiver, allowed)
    else:
        encoded = {OBJECT_KEY: _checked_path(type(receiver), allowed),
                   "attrs": encode_value(dict(vars(receiver)), allowed)}
    return _encoded({"receiver": encoded, "method": method,
                     "args": encode_value(list(args), allowed), "kwargs": encode_value(kwargs, allowed)})


def _checked_path(obj: Any, allowed: tuple[str, ...]) -> str:
    path = path_of(obj)
    if not is_allowed(path, allowed):
        raise EnqueueError(f"module of {path} is not in allowed_modules {list(allowed)}")
    return path


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
        _checked_path(type(value), allowed)
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


def _encoded(data: dict) -> Encoded:
    return Encoded(_ENCODER.encode(data), name_of(data))


def name_of(data: Mapping[str, Any]) -> str:
    """The display name of a decoded handler: its target, or its receiver's class and method."""
    if "target" in data:
        return str(data["target"])
    receiver = data["receiver"]
    owner = receiver.get(OBJECT_KEY) or receiver[RECORD_KEY]
    return f"{owner}#{data['method']}"


@dataclass(frozen=True)
class Call:
    """A decoded handler, ready to run; ``owner`` carries the job's policy and hooks, ``name``
    is the job's display name (for logs and metrics)."""

    function: Callable[..., Any]
    args: list[Any]
    kwargs: dict[str, Any]
    owner: Any
    name: str

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
    if records:
        args, kwargs = decode_value(args, allowed, load), decode_value(kwargs, allowed, load)
    if "target" in data:
        function = resolve(data["target"], allowed)
        if not callable(function):
            raise DeserializationError(f"{data['target']} is not callable")
        return Call(function, args, kwargs, function, str(data["target"]))
    receiver = _decode_receiver(data["receiver"], allowed, load)
    method = getattr(receiver, str(data["method"]), None)
    if not callable(method) or str(data["method"]).startswith("_"):
        raise DeserializationError(f"{type(receiver).__name__} has no public method {data['method']!r}")
    return Call(method, args, kwargs, receiver, name_of(data))


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
            return load(cls, list(value["pk"]))
        return {k: decode_value(v, allowed, load) for k, v in value.items()}
    return value
