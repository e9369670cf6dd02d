"""A future that works on every anyio backend."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

import anyio

from ._adapter import CallSoon, current_call_soon, report_callback_error

T = TypeVar("T")

_PENDING = "pending"
_CANCELLED = "cancelled"
_FINISHED = "finished"


class InvalidStateError(RuntimeError):
    """The future is not in the state the operation needs (e.g. ``result()`` while pending)."""


class FutureCancelledError(Exception):
    """The future was cancelled with :meth:`Future.cancel`.

    Raised by ``result()``, ``exception()`` and ``await`` on a cancelled future. It is a plain
    exception, not the runtime's cancellation exception: cancelling a future does not cancel the
    tasks that await it, it only completes them with this error.
    """


class Future(Generic[T]):
    """The result of an operation that completes later, portable across asyncio, uvloop and trio.

    It follows :class:`asyncio.Future`:

    * It completes once, by :meth:`set_result`, :meth:`set_exception` or :meth:`cancel`; completing
      it again raises :class:`InvalidStateError` (``cancel()`` on a done future returns False).
    * Done-callbacks are plain callables taking the future. They are *scheduled*, never run inline:
      when the future completes, each callback is handed to the running loop's scheduler (see
      :func:`anybench._adapter.current_call_soon`) and runs after the completing code yields, in
      registration order. A callback added to a done future is scheduled at once.
    * A callback that raises is reported on the ``anybench`` logger with its traceback; the other
      callbacks still run. Nothing is swallowed silently.
    * Passing a coroutine function, or a coroutine, as a callback raises :class:`TypeError`: the
      callback would never run (only a "never awaited" RuntimeWarning would say so). Schedule the
      coroutine from a plain callback instead, e.g. ``lambda fut: tg.start_soon(handler, fut)``.
    * ``await fut`` suspends until the future completes, then returns the result or raises its
      exception (:class:`FutureCancelledError` if it was cancelled). Awaiting a done future does not
      yield. Cancelling the awaiting task leaves the future untouched.

    Create and use it inside a running event loop: it binds to the loop that created it.
    """

    __slots__ = ("_call_soon", "_callbacks", "_event", "_exception", "_result", "_state")

    def __init__(self) -> None:
        self._state = _PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future[T]], object]] = []
        self._call_soon: CallSoon = current_call_soon()
        self._event: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<Future {self._state}>"

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
        if self._state == _PENDING:
            raise InvalidStateError("result is not set yet")
        if self._state == _CANCELLED:
            raise FutureCancelledError("the future was cancelled")
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[no-any-return]

    def exception(self) -> BaseException | None:
        """The exception set on the future, or None if it has a result.

        Raises :class:`FutureCancelledError` if cancelled, :class:`InvalidStateError` if pending.
        """
        if self._state == _PENDING:
            raise InvalidStateError("exception is not set yet")
        if self._state == _CANCELLED:
            raise FutureCancelledError("the future was cancelled")
        return self._exception

    # -- completing --------------------------------------------------------------------------

    def set_result(self, result: T) -> None:
        """Complete the future with *result* and schedule its callbacks."""
        if self._state != _PENDING:
            raise InvalidStateError(f"future is already {self._state}")
        self._result = result
        self._complete(_FINISHED)

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        """Complete the future with *exception* (a class is instantiated) and schedule callbacks."""
        if self._state != _PENDING:
            raise InvalidStateError(f"future is already {self._state}")
        if isinstance(exception, type):
            exception = exception()
        if not isinstance(exception, BaseException):
            raise TypeError(f"set_exception() needs an exception, not {type(exception).__name__}")
        self._exception = exception
        self._complete(_FINISHED)

    def cancel(self) -> bool:
        """Cancel the future and schedule its callbacks; False if it was already done."""
        if self._state != _PENDING:
            return False
        self._complete(_CANCELLED)
        return True

    def _complete(self, state: str) -> None:
        self._state = state
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._call_soon(self._run_callback, callback)
        if self._event is not None:
            self._event.set()

    def _run_callback(self, callback: Callable[[Future[T]], object]) -> None:
        try:
            callback(self)
        except Exception as exc:
            report_callback_error(callback, exc)

    # -- callbacks ---------------------------------------------------------------------------

    def add_done_callback(self, callback: Callable[[Future[T]], object]) -> None:
        """Run ``callback(future)`` from the scheduler once the future is done.

        Raises TypeError for a coroutine function or a coroutine, which would never run.
        """
        if inspect.iscoroutinefunction(callback) or inspect.iscoroutine(callback):
            raise TypeError(
                f"add_done_callback() got {callback!r}, a coroutine function or coroutine: it "
                "would never run. Pass a plain function, and start the coroutine from it, e.g. "
                "lambda fut: task_group.start_soon(handler, fut)"
            )
        if not callable(callback):
            raise TypeError(f"add_done_callback() needs a callable, not {type(callback).__name__}")
        if self._state != _PENDING:
            self._call_soon(self._run_callback, callback)
        else:
            self._callbacks.append(callback)

    def remove_done_callback(self, callback: Callable[[Future[T]], object]) -> int:
        """Remove every registration of *callback* not yet scheduled; return how many."""
        kept = [cb for cb in self._callbacks if cb != callback]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    # -- awaiting ----------------------------------------------------------------------------

    async def wait(self) -> T:
        """Wait until the future is done; return its result or raise its exception."""
        if self._state == _PENDING:
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()
        return self.result()

    def __await__(self) -> Generator[Any, None, T]:
        return self.wait().__await__()
