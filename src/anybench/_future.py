"""A future that works on every anyio backend, with :class:`asyncio.Future`'s semantics."""

from __future__ import annotations

import asyncio
import inspect
import reprlib
from collections.abc import Callable, Generator
from contextvars import Context, copy_context
from functools import partial, partialmethod
from types import FunctionType, GenericAlias, MethodType
from typing import Any, Generic, TypeVar

from ._adapter import (
    FATAL_EXCEPTIONS,
    Loop,
    current_loop,
    future_waiter,
    logger,
    report_callback_error,
)

T = TypeVar("T")

_PENDING = "pending"
_CANCELLED = "cancelled"
_FINISHED = "finished"


class InvalidStateError(RuntimeError, asyncio.InvalidStateError):
    """The future is not in the state the operation needs (e.g. ``result()`` while pending).

    Also an :class:`asyncio.InvalidStateError`, so that code written for asyncio catches it.
    """


class FutureCancelledError(Exception):
    """The future was cancelled with :meth:`Future.cancel`.

    Raised by ``result()``, ``exception()`` and ``await`` on a cancelled future, with the message
    given to ``cancel(msg)`` as its argument, if any. It is a plain exception, not the runtime's
    cancellation exception (asyncio raises ``CancelledError`` here): to anyio, and on trio, the
    cancellation exception means "your cancel scope was cancelled", and a task awaiting a cancelled
    future has not been cancelled, it has been given an error.
    """


Entry = tuple[Callable[["Future[Any]"], object], "Context | None"]


class Future(Generic[T]):
    """The result of an operation that completes later, portable across asyncio, uvloop and trio.

    It follows :class:`asyncio.Future`, as CPython's own future tests check it (ported in
    ``tests/test_future_cpython.py``):

    * It completes once, by :meth:`set_result`, :meth:`set_exception` or :meth:`cancel`; completing
      it again raises :class:`InvalidStateError` (``cancel()`` on a done future returns False).
    * Done-callbacks are plain callables taking the future. They are *scheduled*, never run inline:
      when the future completes, each callback is handed to the running loop's scheduler (see
      :func:`anybench._adapter.current_loop`) and runs after the completing code yields, in
      registration order, inside the :mod:`contextvars` context current at ``add_done_callback``
      (or the one passed as ``context=``). A callback added to a done future is scheduled at once.
      One checkpoint (``await anyio.sleep(0)``) after completing a future is enough for its
      callbacks to have run, on every runtime.
    * A callback that raises is reported on the ``anybench`` logger with its traceback; the other
      callbacks still run. ``KeyboardInterrupt`` and ``SystemExit`` are not reported: they end the
      run, and ``anyio.run`` raises them.
    * Passing a coroutine function, a coroutine, or an object whose ``__call__`` is ``async def``
      as a callback raises :class:`TypeError`: the callback would never run (only a "never
      awaited" RuntimeWarning would say so). Schedule the coroutine from a plain callback instead,
      e.g. ``lambda fut: tg.start_soon(handler, fut)``.
    * ``await fut`` suspends until the future completes, then returns the result or raises its
      exception (:class:`FutureCancelledError` if it was cancelled). The awaiting task is woken by
      one of the future's done-callbacks, registered when it starts waiting. Awaiting a done
      future does not yield. Cancelling the awaiting task leaves the future untouched.
    * A future whose exception is never retrieved (by ``result()``, ``exception()`` or ``await``)
      logs "Future exception was never retrieved" on the ``anybench`` logger when collected.

    Create and use it inside a running event loop: it binds to the loop that created it, and
    scheduling a callback after that run has ended raises ``RuntimeError('Event loop is closed')``.
    The deliberate differences from ``asyncio.Future`` are listed in the README ("The portable
    future").
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_cancel_message",
        "_exception",
        "_exception_tb",
        "_loop",
        "_result",
        "_state",
        "_unretrieved",
    )

    # As asyncio.Future: Future[int] is a types.GenericAlias.
    __class_getitem__ = classmethod(GenericAlias)  # type: ignore[var-annotated]

    def __init__(self) -> None:
        self._state = _PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Entry] = []
        self._unretrieved: _UnretrievedException | None = None
        self._loop: Loop = current_loop()

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        info = [self._state]
        if self._state == _FINISHED:
            if self._exception is not None:
                info.append(f"exception={self._exception!r}")
            else:
                info.append(f"result={reprlib.repr(self._result)}")
        if self._callbacks:
            info.append(_format_callbacks(self._callbacks))
        return f"<{type(self).__name__} {' '.join(info)}>"

    # -- state -------------------------------------------------------------------------------

    def done(self) -> bool:
        """True once the future has a result, an exception, or was cancelled."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        """True if the future was cancelled."""
        return self._state == _CANCELLED

    def result(self) -> T:
        """The result; raises the future's exception, or :class:`FutureCancelledError`.

        Raises :class:`InvalidStateError` while the future is pending.
        """
        if self._state != _FINISHED:
            if self._state == _CANCELLED:
                raise self._cancelled_error()
            raise InvalidStateError("Result is not ready.")
        exception = self._exception
        if exception is not None:
            self._retrieved()
            # The traceback saved at set_exception: raising again must not grow it.
            raise exception.with_traceback(self._exception_tb)
        return self._result  # type: ignore[no-any-return]

    def exception(self) -> BaseException | None:
        """The exception set on the future, or None if it has a result.

        Raises :class:`FutureCancelledError` if cancelled, :class:`InvalidStateError` if pending.
        """
        if self._state != _FINISHED:
            if self._state == _CANCELLED:
                raise self._cancelled_error()
            raise InvalidStateError("Exception is not set.")
        self._retrieved()
        return self._exception

    def _cancelled_error(self) -> FutureCancelledError:
        msg = self._cancel_message
        return FutureCancelledError() if msg is None else FutureCancelledError(msg)

    def _retrieved(self) -> None:
        unretrieved = self._unretrieved
        if unretrieved is not None:
            unretrieved.exception = None
            self._unretrieved = None

    # -- completing --------------------------------------------------------------------------

    def set_result(self, result: T) -> None:
        """Complete the future with *result* and schedule its callbacks."""
        if self._state != _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        self._result = result
        self._complete(_FINISHED)

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        """Complete the future with *exception* (a class is instantiated) and schedule callbacks.

        ``StopIteration`` is refused with TypeError, as asyncio does: raised out of ``await``, it
        would end the awaiting coroutine's generator machinery instead of reaching the caller.
        """
        if self._state != _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        if isinstance(exception, type):
            exception = exception()
        if not isinstance(exception, BaseException):
            raise TypeError(f"set_exception() needs an exception, not {type(exception).__name__}")
        if isinstance(exception, StopIteration):
            raise TypeError(
                "StopIteration interacts badly with generators and cannot be raised into a Future"
            )
        self._exception = exception
        self._exception_tb = exception.__traceback__
        self._complete(_FINISHED)
        self._unretrieved = _UnretrievedException(type(self).__name__, exception)

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the future and schedule its callbacks; False if it was already done.

        *msg* becomes the argument of the :class:`FutureCancelledError` that ``result()``,
        ``exception()`` and ``await`` raise.
        """
        self._retrieved()  # as asyncio: a failed future that is "cancelled" is not reported
        if self._state != _PENDING:
            return False
        self._cancel_message = msg
        self._complete(_CANCELLED)
        return True

    def _complete(self, state: str) -> None:
        self._state = state
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = []
            call_soon = self._loop.call_soon
            run_callback = self._run_callback
            for callback, context in callbacks:
                call_soon(run_callback, callback, context=context)

    def _run_callback(self, callback: Callable[[Future[T]], object]) -> None:
        try:
            callback(self)
        except FATAL_EXCEPTIONS:
            raise
        except BaseException as exc:
            report_callback_error(callback, exc)

    # -- callbacks ---------------------------------------------------------------------------

    def add_done_callback(
        self, callback: Callable[[Future[T]], object], *, context: Context | None = None
    ) -> None:
        """Run ``callback(future)`` from the scheduler once the future is done.

        It runs inside *context*, by default a copy of the current :mod:`contextvars` context.
        Raises TypeError for a coroutine function, a coroutine, or an object with an ``async def
        __call__``, which would never run.
        """
        if not _is_plain_function(callback):
            _check_callback(callback)
        if context is None:
            context = copy_context()
        if self._state == _PENDING:
            self._callbacks.append((callback, context))
        else:
            self._loop.call_soon(self._run_callback, callback, context=context)

    def remove_done_callback(self, callback: Callable[[Future[T]], object]) -> int:
        """Remove every registration of *callback* not yet scheduled; return how many."""
        # Compare against a snapshot: the callback's __eq__ may itself add or remove callbacks
        # (CPython bpo-28963, gh-97592). Only registrations seen in the snapshot and still
        # registered are removed and counted.
        matches = [entry for entry in self._callbacks[:] if entry[0] == callback]
        if not matches:
            return 0
        matched = {id(entry) for entry in matches}
        before = self._callbacks
        self._callbacks = [entry for entry in before if id(entry) not in matched]
        return len(before) - len(self._callbacks)

    def _add_waiter(self, waker: Callable[[Any], object], context: Context | None) -> object:
        """Register an awaiting task's wake-up (see anybench._adapter.future_waiter)."""
        entry = (waker, context)
        self._callbacks.append(entry)
        return entry

    def _discard_waiter(self, entry: object) -> None:
        callbacks = self._callbacks
        for i in range(len(callbacks) - 1, -1, -1):
            if callbacks[i] is entry:
                del callbacks[i]
                return

    # -- awaiting ----------------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, T]:
        if self._state == _PENDING:
            yield from future_waiter(self._loop, self)
            if self._state == _PENDING:
                raise RuntimeError("await wasn't used with future")
        return self.result()


class _UnretrievedException:
    """Logs a failed future's exception if nobody retrieved it before the future was collected.

    A separate object, as asyncio's pure-Python Future once had, so that only failed futures pay
    for a finalizer: a ``__del__`` on Future itself would run for every future.
    """

    __slots__ = ("exception", "owner")

    def __init__(self, owner: str, exception: BaseException) -> None:
        self.owner = owner
        self.exception: BaseException | None = exception

    def __del__(self) -> None:
        exc = self.exception
        if exc is not None:
            logger.error(
                "%s exception was never retrieved\nfuture: <%s finished exception=%r>",
                self.owner,
                self.owner,
                exc,
                exc_info=(type(exc), exc, exc.__traceback__),
            )


# -- callbacks that would never run ------------------------------------------------------------

_CO_COROUTINE = inspect.CO_COROUTINE


def _is_plain_function(callback: object) -> bool:
    """True for the common callback, a plain (or bound, or partial) ``def`` function: cheaply."""
    func = callback
    kind = type(func)
    if kind is MethodType:
        func = func.__func__  # type: ignore[attr-defined]
    elif kind is partial:
        func = func.func  # type: ignore[attr-defined]
    # A function with attributes may carry a coroutine mark (inspect.markcoroutinefunction).
    return (
        type(func) is FunctionType
        and not func.__code__.co_flags & _CO_COROUTINE
        and not func.__dict__
    )


def _check_callback(callback: object) -> None:
    """Refuse, with TypeError, a callback that is not callable or would never run."""
    target = callback
    while isinstance(target, partial):
        target = target.func
    async_call = (
        callable(target)
        and not isinstance(target, (FunctionType, MethodType, type))
        and inspect.iscoroutinefunction(type(target).__call__)
    )
    if inspect.iscoroutinefunction(callback) or inspect.iscoroutine(callback) or async_call:
        raise TypeError(
            f"add_done_callback() got {callback!r}, a coroutine function or coroutine: it "
            "would never run. Pass a plain function, and start the coroutine from it, e.g. "
            "lambda fut: task_group.start_soon(handler, fut)"
        )
    if not callable(callback):
        raise TypeError(f"add_done_callback() needs a callable, not {type(callback).__name__}")


# -- repr, as asyncio's ------------------------------------------------------------------------


def _format_callbacks(callbacks: list[Entry]) -> str:
    size = len(callbacks)
    if size == 1:
        text = _callback_source(callbacks[0][0])
    elif size == 2:
        text = f"{_callback_source(callbacks[0][0])}, {_callback_source(callbacks[1][0])}"
    else:
        first, last = _callback_source(callbacks[0][0]), _callback_source(callbacks[-1][0])
        text = f"{first}, <{size - 2} more>, {last}"
    return f"cb=[{text}]"


def _callback_source(func: object) -> str:
    text = _callback_name(func, (), None)
    source = _function_source(func)
    if source is not None:
        text += f" at {source[0]}:{source[1]}"
    return text


def _callback_name(
    func: object, args: tuple[Any, ...], kwargs: dict[str, Any] | None, suffix: str = ""
) -> str:
    if isinstance(func, partial):
        suffix = _format_arguments(args, kwargs) + suffix
        return _callback_name(func.func, func.args, func.keywords, suffix)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{name}{_format_arguments(args, kwargs)}{suffix}"


def _format_arguments(args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> str:
    items = [reprlib.repr(arg) for arg in args]
    items.extend(f"{key}={reprlib.repr(value)}" for key, value in (kwargs or {}).items())
    return f"({', '.join(items)})"


def _function_source(func: object) -> tuple[str, int] | None:
    func = inspect.unwrap(func) if callable(func) else func
    if inspect.isfunction(func):
        return func.__code__.co_filename, func.__code__.co_firstlineno
    if isinstance(func, (partial, partialmethod)):
        return _function_source(func.func)
    return None
