"""The one runtime adapter: what anyio does not offer, provided for each backend.

The portable future (``anybench._future``) needs three things anyio has no primitive for. This
module is the only place in anybench that reaches below anyio to provide them:

* **A loop that runs plain callables soon** (:func:`current_loop`), so that done-callbacks are
  dispatched by the scheduler, as asyncio's ``Future`` does, rather than run inside
  ``set_result``. On asyncio-based runtimes it is the running event loop itself: a callback is
  ``loop.call_soon(fn, arg, context=ctx)``, exactly what ``asyncio.Future`` does. On trio it is a
  :class:`TrioLoop`, one per run (below).
* **A way to suspend an awaiting task until the future wakes it** (:func:`future_waiter`). As in
  asyncio, the wake-up is one of the future's done-callbacks, so awaiters and callbacks are woken
  in the order they were registered.
* **One behaviour for a callback that raises**, whatever the runtime: an exception is reported on
  the ``anybench`` logger (:func:`report_callback_error`) and the callbacks after it still run;
  ``KeyboardInterrupt`` and ``SystemExit`` end the run and ``anyio.run`` raises them, as asyncio's
  loop does.

Why trio does not use ``TrioToken.run_sync_soon``: that call is thread-safe (the counterpart of
asyncio's ``call_soon_threadsafe``) and writes a byte to the wake-up socket on every call. asyncio's
``loop.call_soon`` is not thread-safe and costs no system call, so comparing the two would measure
thread safety, not scheduling. :class:`TrioLoop` instead keeps a plain FIFO and runs it from trio's
scheduler between two batches of tasks (an ``after_io_wait`` instrument hook), which is where
asyncio runs its ready queue too: a task that completes a future and checkpoints once finds the
callbacks run when it resumes. A system task is made runnable while callbacks wait, only so that
the scheduler polls instead of sleeping on I/O: one task wake-up per batch of callbacks, the same
shape as one pass of asyncio's ready queue.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, cast

if TYPE_CHECKING:
    import trio

logger = logging.getLogger("anybench")

#: What a callback may raise to end the run: propagated, never reported, as asyncio's loop does.
FATAL_EXCEPTIONS = (KeyboardInterrupt, SystemExit)

#: The ``context`` that marks a trio task wake-up for :meth:`TrioLoop.call_soon` (see there).
WAKE_AT_ONCE = contextvars.Context()


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


Loop: TypeAlias = "asyncio.AbstractEventLoop | TrioLoop"


def current_loop() -> Loop:
    """The loop of the running event loop: asyncio's own, or this trio run's :class:`TrioLoop`.

    Both have ``call_soon(fn, *args, context=None)``: ``fn(*args)`` runs from the scheduler after
    the caller yields, in the order of the calls, inside *context* when one is given.
    """
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return _current_trio_loop()
    loop = asyncio._get_running_loop()
    if loop is not None:
        return loop
    raise RuntimeError("no asyncio or trio event loop is running in this thread")


class Waitable(Protocol):
    """What :func:`future_waiter` needs from a future."""

    def done(self) -> bool: ...

    def _add_waiter(
        self, waker: Callable[[Any], object], context: contextvars.Context | None
    ) -> object: ...

    def _discard_waiter(self, entry: object) -> None: ...


def future_waiter(loop: Loop, future: Waitable) -> Iterator[Any]:
    """What ``await future`` yields from: it suspends the awaiting task until *future* wakes it.

    The wake-up is registered among the future's done-callbacks. Cancelling the awaiting task
    withdraws that registration and leaves the future untouched.
    """
    if type(loop) is TrioLoop:
        return loop.waiter(future)
    return _AsyncioWaiter(future, cast("asyncio.AbstractEventLoop", loop))


# -- asyncio ---------------------------------------------------------------------------------

_WAITING = "waiting"
_WOKEN = "woken"
_CANCELLED = "cancelled"


class _AsyncioWaiter:
    """What an asyncio Task awaits for ``await future``: a one-shot, duck-typed asyncio future.

    asyncio's Task accepts any object with ``_asyncio_future_blocking`` and registers its wake-up
    with ``add_done_callback``; registering that wake-up among the future's done-callbacks is what
    makes the awaiter resume in its registration order, as in asyncio, where ``await fut`` is a
    done-callback. It is not the future itself because ``Task.cancel()`` cancels what the task
    waits on, and cancelling an awaiting task must leave the future alone: ``cancel()`` here only
    withdraws this one wake-up.
    """

    __slots__ = (
        "_asyncio_future_blocking",
        "_cancel_message",
        "_context",
        "_entry",
        "_future",
        "_loop",
        "_state",
        "_wakeup",
        "_yielded",
    )

    def __init__(self, future: Waitable, loop: asyncio.AbstractEventLoop) -> None:
        self._asyncio_future_blocking = True
        self._future = future
        self._loop = loop
        self._state = _WAITING
        self._wakeup: Callable[[Any], object] | None = None
        self._context: contextvars.Context | None = None
        self._entry: object = None
        self._cancel_message: object = None
        self._yielded = False

    # ``yield from waiter`` yields the waiter once, then returns: no generator frame needed.
    def __iter__(self) -> _AsyncioWaiter:
        return self

    def __next__(self) -> _AsyncioWaiter:
        if self._yielded:
            raise StopIteration
        self._yielded = True
        return self

    # -- the asyncio future protocol, as far as asyncio.Task and anyio use it ------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def add_done_callback(
        self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        self._wakeup = fn
        self._context = context
        self._entry = self._future._add_waiter(self, context)

    def __call__(self, future: object) -> None:
        """The future's done-callback: resume the task."""
        if self._state is _WAITING and self._wakeup is not None:
            self._state = _WOKEN
            self._wakeup(self)

    def cancel(self, msg: object = None) -> bool:
        if self._state is not _WAITING or self._wakeup is None:
            return False  # already woken: the Task delivers its cancellation when it resumes
        # If the future is done, its wake-up is already queued; it finds the waiter cancelled.
        self._state = _CANCELLED
        self._cancel_message = msg
        self._future._discard_waiter(self._entry)
        self._loop.call_soon(self._wakeup, self, context=self._context)
        return True

    def done(self) -> bool:
        return self._state is not _WAITING

    def cancelled(self) -> bool:
        return self._state is _CANCELLED

    def result(self) -> None:
        if self._state is _CANCELLED:
            msg = self._cancel_message
            raise asyncio.CancelledError() if msg is None else asyncio.CancelledError(msg)

    def __repr__(self) -> str:
        return f"<await Future {self._state}>"


# -- trio ------------------------------------------------------------------------------------

_trio_loop_var: Any = None


def _current_trio_loop() -> TrioLoop:
    global _trio_loop_var
    if _trio_loop_var is None:
        import trio

        _trio_loop_var = trio.lowlevel.RunVar("anybench_loop")
    loop: TrioLoop | None = _trio_loop_var.get(None)
    if loop is None:
        loop = TrioLoop()
        _trio_loop_var.set(loop)
        loop._start()
    return loop


def _trio_runner() -> Any:
    """trio's private Runner for this run, or None if trio's internals have moved.

    Used for one thing only: ending the run with a callback's KeyboardInterrupt or SystemExit
    (see :meth:`TrioLoop._end_run_with`), which trio has no public way to do.
    """
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT

        runner = GLOBAL_RUN_CONTEXT.runner
    except (ImportError, AttributeError):
        return None
    if not all(hasattr(runner, name) for name in ("main_task", "main_task_outcome")):
        return None
    return runner


Job: TypeAlias = "tuple[Callable[..., object], tuple[Any, ...], contextvars.Context | None]"


class TrioLoop:
    """asyncio's ``call_soon`` on trio, for one run (see the module docstring).

    Callbacks run in FIFO order between two batches of trio's scheduler: what is queued before a
    batch ends runs before the next batch starts; what callbacks queue runs at the next pass, as
    in asyncio's ready queue. Callbacks run outside any task, as in asyncio.

    * A callback that raises is reported (:func:`report_callback_error`) and the others still
      run. A ``KeyboardInterrupt`` or ``SystemExit`` cancels the main task and becomes what
      ``trio.run`` raises, as asyncio's loop lets it out of ``run_until_complete``; the
      callbacks queued after it still run.
    * During shutdown, once trio has cancelled its system tasks (e.g. while it finalizes async
      generators), callbacks go through ``TrioToken.run_sync_soon``, which trio keeps running to
      the end of the run; a ``TrioLoop`` created then starts in that mode.
    * After the run, ``call_soon`` raises ``RuntimeError('Event loop is closed')``, as asyncio's
      closed loop does.
    """

    def __init__(self) -> None:
        import trio

        self._trio = trio
        self._reschedule = trio.lowlevel.reschedule
        self._token = trio.lowlevel.current_trio_token()
        self._runner = _trio_runner()
        self._queue: deque[Job] = deque()
        self._parked: trio.lowlevel.Task | None = None  # the keep-awake task while it waits
        self._keep_awake_running = False
        self._pass_requested = False  # a run_sync_soon pass is on its way (shutdown mode)
        self._closed = False
        self._fatal: BaseException | None = None

    def _start(self) -> None:
        lowlevel = self._trio.lowlevel
        # Duck-typed: trio registers the hooks an object defines, subclass of Instrument or not.
        lowlevel.add_instrument(cast("trio.abc.Instrument", self))
        try:
            lowlevel.spawn_system_task(self._keep_awake, name="anybench callbacks")
        except RuntimeError:  # "Nursery is closed to new arrivals": the run is shutting down
            return
        self._keep_awake_running = True

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        """Run ``callback(*args)`` (inside *context*, if given) from the scheduler, soon.

        With ``context=WAKE_AT_ONCE`` the call is made now: it is an awaiting task's wake-up
        (:meth:`waiter`), which runs no user code and only makes the task runnable; the task
        itself runs in the next batch, after the callbacks queued before it.
        """
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if context is WAKE_AT_ONCE:
            callback(*args)
            return
        self._queue.append((callback, args, context))
        if self._parked is not None:
            task, self._parked = self._parked, None
            self._reschedule(task)
        elif not self._keep_awake_running and not self._pass_requested and not self._request_pass():
            self._queue.clear()
            raise RuntimeError("Event loop is closed")

    def waiter(self, future: Waitable) -> Iterator[Any]:
        """Park the current task until *future* calls its wake-up (see :func:`future_waiter`)."""
        lowlevel = self._trio.lowlevel
        if _trio_loop_var.get(None) is not self:
            raise RuntimeError(f"{future!r} is attached to a different trio run")
        waker = _TrioWaker(future, lowlevel.current_task(), self._reschedule)
        waker.entry = future._add_waiter(waker, WAKE_AT_ONCE)
        waiting: Iterator[Any] = lowlevel.wait_task_rescheduled(waker.abort).__await__()
        return waiting

    # -- running callbacks -----------------------------------------------------------------

    def _run_pass(self) -> None:
        """Run what is queued now; what these callbacks queue waits for the next pass."""
        queue = self._queue
        for _ in range(len(queue)):
            callback, args, context = queue.popleft()
            try:
                if context is None:
                    callback(*args)
                else:
                    context.run(callback, *args)
            except BaseException as exc:
                if isinstance(exc, FATAL_EXCEPTIONS):
                    self._end_run_with(exc)
                else:
                    report_callback_error(callback, exc)

    def after_io_wait(self, timeout: float) -> None:
        """trio instrument hook, between two batches of tasks: run the queued callbacks."""
        if self._queue:
            self._run_pass()

    async def _keep_awake(self) -> None:
        """System task: runnable while callbacks are queued, so that the scheduler does not sleep.

        The callbacks themselves run from :meth:`after_io_wait`; this task runs any it finds
        when it gets its turn first.
        """
        lowlevel = self._trio.lowlevel
        try:
            while True:
                if self._queue:
                    self._run_pass()
                if self._queue:
                    await lowlevel.cancel_shielded_checkpoint()
                else:
                    self._parked = lowlevel.current_task()
                    await lowlevel.wait_task_rescheduled(self._unpark)
        finally:  # cancelled at shutdown: from now on, callbacks go through run_sync_soon
            self._parked = None
            self._keep_awake_running = False
            if self._queue:
                self._request_pass()

    def _unpark(self, raise_cancel: object) -> trio.lowlevel.Abort:
        self._parked = None
        return self._trio.lowlevel.Abort.SUCCEEDED

    def _request_pass(self) -> bool:
        """Shutdown mode: have trio's run_sync_soon task run a pass; False once it has exited."""
        try:
            self._token.run_sync_soon(self._shutdown_pass)
        except self._trio.RunFinishedError:
            return False
        self._pass_requested = True
        return True

    def _shutdown_pass(self) -> None:
        self._pass_requested = False
        self._run_pass()
        # Never raise from here: trio turns it into TrioInternalError. If run_sync_soon is no
        # longer taking work, this is the last chance to run what callbacks queued.
        while self._queue and not self._keep_awake_running and not self._request_pass():
            self._run_pass()

    # -- ending the run --------------------------------------------------------------------

    def _end_run_with(self, exc: BaseException) -> None:
        """A callback raised KeyboardInterrupt or SystemExit: make ``trio.run`` raise it.

        asyncio's loop lets such an exception out of ``run_until_complete``; the main task is then
        cancelled while the loop shuts down. Here the main task is cancelled now, and the
        exception replaces its outcome when the run ends (:meth:`after_run`).
        """
        runner = self._runner
        if self._fatal is not None or runner is None:
            # A second one, or trio's internals have moved: report it rather than lose it.
            report_callback_error("(ending the run)", exc)
            return
        self._fatal = exc
        main = runner.main_task
        if runner.main_task_outcome is None and main is not None:
            nursery = main.parent_nursery
            if nursery is not None:
                nursery.cancel_scope.cancel(f"a callback raised {type(exc).__name__}")

    def after_run(self) -> None:
        """trio instrument hook, as the run ends: close, and hand over a callback's fatal error."""
        import outcome

        self._closed = True
        self._queue.clear()
        if self._fatal is not None and self._runner is not None:
            self._runner.main_task_outcome = outcome.Error(self._fatal)
        self._runner = None
        self._fatal = None


class _TrioWaker:
    """An awaiting trio task's wake-up, registered among the future's done-callbacks."""

    __slots__ = ("_future", "_reschedule", "_task", "_waiting", "entry")

    def __init__(
        self, future: Waitable, task: trio.lowlevel.Task, reschedule: Callable[..., None]
    ) -> None:
        self._future = future
        self._task = task
        self._reschedule = reschedule
        self._waiting = True
        self.entry: object = None

    def __call__(self, future: object) -> None:
        if self._waiting:
            self._waiting = False
            self._reschedule(self._task)

    def abort(self, raise_cancel: object) -> trio.lowlevel.Abort:
        """The awaiting task is cancelled: withdraw the wake-up, leave the future alone."""
        import trio

        if self._waiting:
            self._waiting = False
            self._future._discard_waiter(self.entry)
        return trio.lowlevel.Abort.SUCCEEDED

    def __repr__(self) -> str:
        return f"<await Future in {self._task!r}>"


# -- native runs ------------------------------------------------------------------------------


def run_native(
    backend: str,
    body: Callable[[], Coroutine[Any, Any, None]],
    deadline_s: float,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    """Run ``body()`` on *backend*'s own runner under its own deadline, never through anyio.

    A native baseline is the control for anyio's changes: run under ``anyio.run`` and
    ``anyio.fail_after``, an anyio release would move it too. On asyncio it runs in
    :class:`asyncio.Runner` with the runtime's *loop_factory* (uvloop's, rloop's, an eager
    loop's; None for asyncio's default) under :func:`asyncio.timeout` (Python 3.10: a fresh
    loop's ``run_until_complete`` under :func:`asyncio.wait_for`); on trio in :func:`trio.run`
    under :func:`trio.fail_after`. A run that outlasts *deadline_s* raises :class:`TimeoutError`
    on either, as ``anyio.fail_after`` does.
    """
    if backend == "asyncio":
        _run_asyncio(body, deadline_s, loop_factory)
    elif backend == "trio":
        _run_trio(body, deadline_s)
    else:
        raise ValueError(f"no native runner for the {backend!r} backend (asyncio or trio)")


def _run_asyncio(
    body: Callable[[], Coroutine[Any, Any, None]],
    deadline_s: float,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> None:
    async def main() -> None:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(deadline_s):
                await body()
        else:  # pragma: no cover - Python 3.10
            await asyncio.wait_for(body(), deadline_s)

    try:
        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(main())
        else:  # pragma: no cover - Python 3.10
            _run_until_complete(main(), loop_factory)
    except asyncio.TimeoutError:  # a class of its own before Python 3.11
        raise TimeoutError from None


def _run_until_complete(
    main: Coroutine[Any, Any, None],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> None:  # pragma: no cover - Python 3.10, where asyncio.Runner is missing
    """What ``asyncio.Runner`` does, for Python 3.10: run *main* on a fresh loop, then cancel
    what it left running and close the loop."""
    loop = (loop_factory or asyncio.new_event_loop)()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _run_trio(body: Callable[[], Coroutine[Any, Any, None]], deadline_s: float) -> None:
    import trio

    async def main() -> None:
        with trio.fail_after(deadline_s):
            await body()

    try:
        trio.run(main)
    except trio.TooSlowError:
        raise TimeoutError from None
