"""The one runtime adapter: what anyio does not offer, provided for each backend.

anyio has no "run this plain callable soon" primitive, and the portable future needs one so that its
done-callbacks are dispatched by the scheduler (as asyncio's ``Future`` does) rather than run inline
inside ``set_result``. This module is the only place in anybench that reaches below anyio.

Why trio does not use ``TrioToken.run_sync_soon``: that call is thread-safe (the counterpart of
asyncio's ``call_soon_threadsafe``) and writes a byte to the wake-up socket on every call. asyncio's
``loop.call_soon`` is not thread-safe and costs no system call, so comparing the two would measure
thread safety, not scheduling. On trio, :func:`call_soon` instead appends to a per-run queue drained
by one system task, which is parked when the queue is empty and rescheduled by the first append: one
task wake-up per batch of callbacks, the same shape as one pass of asyncio's ready queue.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("anybench")

CallSoon = Callable[..., object]


def current_backend() -> str:
    """The name of the anyio backend running the calling code: ``"asyncio"`` or ``"trio"``.

    Raises RuntimeError when called outside an event loop.
    """
    # Cheap on both: no exception is raised and caught on the way to the answer.
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return "trio"
    if asyncio._get_running_loop() is not None:
        return "asyncio"
    raise RuntimeError("no asyncio or trio event loop is running in this thread")


def report_callback_error(callback: object, exc: BaseException) -> None:
    """Report an exception raised by a callback, the same way on every runtime.

    The exception is logged on the ``anybench`` logger with its traceback, as asyncio's default
    exception handler does; it never stops the callbacks queued after it.
    """
    logger.error("Exception in callback %r", callback, exc_info=exc)


def current_call_soon() -> CallSoon:
    """Return ``call_soon(fn, *args)`` for the running event loop.

    ``fn(*args)`` runs from the scheduler after the caller yields, in the order of the calls. Call
    this once and keep the function: it is bound to the current run.
    """
    if current_backend() == "asyncio":
        return asyncio.get_running_loop().call_soon
    return _trio_queue().call_soon


_trio_queue_var: Any = None


def _trio_queue() -> _TrioCallSoonQueue:
    global _trio_queue_var
    import trio

    if _trio_queue_var is None:
        _trio_queue_var = trio.lowlevel.RunVar("anybench_call_soon")
    queue: _TrioCallSoonQueue | None = _trio_queue_var.get(None)
    if queue is None:
        queue = _TrioCallSoonQueue()
        _trio_queue_var.set(queue)
        trio.lowlevel.spawn_system_task(queue.drain, name="anybench call_soon")
    return queue


class _TrioCallSoonQueue:
    """A FIFO of callables drained by one trio system task (see the module docstring)."""

    def __init__(self) -> None:
        import trio

        self._trio = trio
        self._queue: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._parked: Any = None  # the drain task while it waits for work

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        self._queue.append((fn, args))
        if self._parked is not None:
            task, self._parked = self._parked, None
            self._trio.lowlevel.reschedule(task)

    async def drain(self) -> None:
        lowlevel = self._trio.lowlevel
        queue = self._queue
        while True:
            if not queue:
                self._parked = lowlevel.current_task()
                await lowlevel.wait_task_rescheduled(self._abort)
            # Run what was queued before this pass; what these callbacks queue runs next pass,
            # after the other runnable tasks have had their turn, as in asyncio.
            for _ in range(len(queue)):
                fn, args = queue.popleft()
                try:
                    fn(*args)
                except Exception as exc:
                    report_callback_error(fn, exc)
            if queue:
                await lowlevel.cancel_shielded_checkpoint()

    def _abort(self, raise_cancel: object) -> Any:
        self._parked = None
        return self._trio.lowlevel.Abort.SUCCEEDED
