"""What happens around a job: global plugin points, and the job's own hooks (``invoke_job``).

Plugin points are delayed_job's ``Lifecycle``: an application adds, in one
place, a callback that every job (or every worker loop) goes through, such as
a database reconnect before each job, or a tracing span::

    from dj_daemon import lifecycle

    @lifecycle.around("perform")
    def traced(worker, job, proceed):
        with tracer.span(job.name):
            return proceed()

Events and the arguments their callbacks get (``EVENTS``): ``enqueue(job)``
around the enqueue hook and the job's INSERT (or inline run); ``execute(worker)``
around a worker's whole run; ``loop(worker)`` around each batch it reserved;
``perform(worker, job)`` around one job, from loading it to recording its
outcome; ``invoke_job(job)`` around its hooks and call; ``error(worker, job)``
around recording a failed attempt; ``failure(worker, job)`` around failing it
for good. ``before`` callbacks run in the order added, then ``around`` ones
(the first added outermost, each given a ``proceed`` to call once), then the
step, then ``after`` ones.

A callback's exception on the worker's events (execute, loop, perform, error,
failure) is logged with its traceback, and the worker's own step still runs,
once: a plugin can neither crash a worker nor lose or repeat a job. On
``enqueue`` it reaches the caller (nothing is stored), and on ``invoke_job`` it
fails the job like the job's own exception, unless the job had already
succeeded: then it is logged, and the job stays done.

The daemon's workers install the plugins named by the ``plugins`` setting
(``pkg.mod:setup``, each called once per process with this module's
``LIFECYCLE``), so that they are in place before the first job, as
delayed_job's ``Delayed::Worker.plugins``. With no callback for an event, its
call sites cost one set lookup (``hooked``).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, ContextManager, Protocol, TypeVar

from .errors import ConfigError, DJError
from .payload import Call, resolve

log = logging.getLogger("dj_daemon.lifecycle")
T = TypeVar("T")
Callback = Callable[..., Any]

#: Each event and what its callbacks are called with, as delayed_job's ``Lifecycle::EVENTS``.
EVENTS: dict[str, tuple[str, ...]] = {
    "enqueue": ("job",), "execute": ("worker",), "loop": ("worker",), "perform": ("worker", "job"),
    "error": ("worker", "job"), "failure": ("worker", "job"), "invoke_job": ("job",),
}
KINDS = ("before", "around", "after")


class LifecycleError(DJError):
    """An unknown event, or an ``around`` callback that did not call ``proceed``."""


class Lifecycle:
    """Callbacks by event and kind; ``hooked`` names the events that have any."""

    def __init__(self) -> None:
        self._callbacks: dict[tuple[str, str], list[Callback]] = {}
        self._installed: list[Any] = []
        self.hooked: frozenset[str] = frozenset()

    def before(self, event: str, callback: Callback | None = None) -> Any:
        """Call ``callback(*args)`` before ``event``'s step; usable as ``@lifecycle.before("perform")``."""
        return self._add("before", event, callback)

    def after(self, event: str, callback: Callback | None = None) -> Any:
        """Call ``callback(*args)`` after ``event``'s step (not when the step raised)."""
        return self._add("after", event, callback)

    def around(self, event: str, callback: Callback | None = None) -> Any:
        """Call ``callback(*args, proceed)``, which runs the rest (``proceed()``) and returns its result."""
        return self._add("around", event, callback)

    def _add(self, kind: str, event: str, callback: Callback | None) -> Any:
        if event not in EVENTS:
            raise LifecycleError(f"unknown lifecycle event {event!r}: one of {', '.join(EVENTS)}")
        if callback is None:
            return lambda function: self._add(kind, event, function)
        self._callbacks.setdefault((event, kind), []).append(callback)
        self.hooked = self.hooked | {event}
        return callback

    def install(self, plugin: Callable[["Lifecycle"], Any]) -> None:
        """Call ``plugin(self)`` to add its callbacks, once per process however often asked."""
        if plugin not in self._installed:
            self._installed.append(plugin)
            plugin(self)

    def clear(self) -> None:
        """Forget every callback and plugin (for tests)."""
        self._callbacks.clear()
        self._installed.clear()
        self.hooked = frozenset()

    def run(self, event: str, step: Callable[[], T], *args: Any) -> T:
        """``step()`` under ``event``'s callbacks, whose exceptions propagate."""
        for callback in self._callbacks.get((event, "before"), ()):
            callback(*args)
        done: list[T] = []

        def innermost() -> T:
            done.append(step())
            return done[0]
        result = _chain(self._callbacks.get((event, "around"), []), args, innermost)
        if not done:
            raise LifecycleError(f"an around {event} callback returned without calling proceed()")
        for callback in self._callbacks.get((event, "after"), ()):
            callback(*args)
        return result

    def run_guarded(self, event: str, step: Callable[[], T], *args: Any) -> T:
        """``step()`` under ``event``'s callbacks, run exactly once whatever they do: a callback's
        exception is logged, the step's own propagates (the worker's events)."""
        outcome: list[Any] = []  # [result] once the step returned, [None, exc] if it raised

        def once() -> T:
            if not outcome:
                try:
                    outcome.append(step())
                except BaseException as exc:
                    outcome.extend((None, exc))
                    raise
            return outcome[0]
        try:
            self.run(event, once, *args)
        except Exception as exc:
            if len(outcome) != 2 or exc is not outcome[1]:
                log.exception("a %s callback raised; the worker goes on", event)
        if not outcome:
            once()
        if len(outcome) == 2:
            raise outcome[1]
        return outcome[0]


def _chain(arounds: list[Callback], args: tuple, step: Callable[[], T]) -> T:
    """``arounds[0](*args, proceed)`` whose ``proceed`` calls the next one, the last ``step``."""
    if not arounds:
        return step()
    return arounds[0](*args, lambda: _chain(arounds[1:], args, step))


#: The process's lifecycle, which the worker and ``enqueue`` go through.
LIFECYCLE = Lifecycle()
before, after, around, install, clear = (LIFECYCLE.before, LIFECYCLE.after, LIFECYCLE.around,
                                         LIFECYCLE.install, LIFECYCLE.clear)


def install_plugins(paths: tuple[str, ...]) -> None:
    """Install the ``plugins`` setting's ``pkg.mod:setup`` callables (the operator's: not held
    to ``allowed_modules``); a bad path is a one-line error."""
    for path in paths:
        LIFECYCLE.install(resolve(path, ("*",), ConfigError))


def hook(owner: Any, name: str, job: Any, *args: Any) -> None:
    """Call a job's ``name`` hook, if it has one; its own failure is logged and changes nothing."""
    function = getattr(owner, name, None)
    if not callable(function):
        return
    try:
        function(job, *args)
    except Exception:
        log.exception("%s hook of job %s raised", name, job.id)


#: inline mode's frame: none (no deadline, as delayed_job's inline ``invoke_job``)
NO_FRAME = contextlib.nullcontext()


class Loader(Protocol):
    """What ``invoke_job`` needs of a record loader: commit after success, roll back otherwise."""

    def finish(self, success: bool) -> None: ...


def invoke_job(call: Call, job: Any, loader: Loader, frame: ContextManager[Any] = NO_FRAME, *,
               callbacks: bool = True) -> None:
    """Run a job through its hooks, in delayed_job's order, for the worker and inline mode alike.

    ``before``, the call and the records' commit, inside ``frame`` (the
    worker's deadline, whose clean exit is the job's success); then ``success``,
    or ``error(job, exc)`` and the exception raised again; ``after`` in both
    cases. A ``before`` that raises fails the job unrun (``error``, ``after``);
    the other hooks' exceptions are logged and change no outcome (delayed_job
    would fail, and so run again, a job that has done its work). The ``invoke_job``
    plugin callbacks wrap it all (they call it with ``callbacks`` False).
    """
    if callbacks and "invoke_job" in LIFECYCLE.hooked:
        return LIFECYCLE.run("invoke_job", lambda: invoke_job(call, job, loader, frame, callbacks=False), job)
    owner = call.owner
    try:
        try:
            with frame:
                before = getattr(owner, "before", None)
                if callable(before):
                    before(job)
                call.run()
                loader.finish(True)
        except BaseException as exc:
            loader.finish(False)
            hook(owner, "error", job, exc)
            raise
        hook(owner, "success", job)
    finally:
        hook(owner, "after", job)
