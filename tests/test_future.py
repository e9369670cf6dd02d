"""The portable future's semantics, on every runtime."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import traceback
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import pytest

from anybench import Future, FutureCancelledError, InvalidStateError, Runtime

Run = Callable[[Callable[[], Awaitable[Any]]], Any]


async def let_callbacks_run() -> None:
    """Yield to the scheduler once: the callbacks scheduled so far have then run, on every runtime.

    (Callbacks that these callbacks schedule run one pass later, as in asyncio.)
    """
    await anyio.sleep(0)


def test_result_and_state(run_on: Run) -> None:
    async def main() -> None:
        fut: Future[int] = Future()
        assert not fut.done()
        with pytest.raises(InvalidStateError):
            fut.result()
        with pytest.raises(InvalidStateError):
            fut.exception()
        fut.set_result(7)
        assert fut.done()
        assert not fut.cancelled()
        assert fut.result() == 7
        assert fut.exception() is None
        with pytest.raises(InvalidStateError):
            fut.set_result(8)
        with pytest.raises(asyncio.InvalidStateError):  # as code written for asyncio catches it
            fut.set_result(8)
        with pytest.raises(InvalidStateError):
            fut.set_exception(ValueError())
        assert fut.cancel() is False
        assert fut.result() == 7

    run_on(main)


def test_exception(run_on: Run) -> None:
    async def main() -> None:
        fut: Future[int] = Future()
        fut.set_exception(ValueError("boom"))
        assert isinstance(fut.exception(), ValueError)
        with pytest.raises(ValueError, match="boom"):
            fut.result()
        with pytest.raises(ValueError, match="boom"):
            await fut
        other: Future[int] = Future()
        other.set_exception(KeyError)  # a class is instantiated, as asyncio does
        assert isinstance(other.exception(), KeyError)
        with pytest.raises(TypeError):
            Future().set_exception("not an exception")  # type: ignore[arg-type]

    run_on(main)


def test_cancel(run_on: Run) -> None:
    async def main() -> None:
        fut: Future[int] = Future()
        seen: list[bool] = []
        fut.add_done_callback(lambda f: seen.append(f.cancelled()))
        assert fut.cancel() is True
        assert fut.done()
        assert fut.cancelled()
        assert fut.cancel() is False
        with pytest.raises(FutureCancelledError):
            fut.result()
        with pytest.raises(FutureCancelledError):
            fut.exception()
        with pytest.raises(FutureCancelledError):
            await fut
        await let_callbacks_run()
        assert seen == [True]

    run_on(main)


def test_callbacks_are_scheduled_not_inline_and_run_in_registration_order(run_on: Run) -> None:
    async def main() -> list[tuple[str, int]]:
        fut: Future[int] = Future()
        order: list[tuple[str, int]] = []
        for name in ("a", "b", "c"):
            fut.add_done_callback(partial(lambda name, f: order.append((name, f.result())), name))
        fut.set_result(1)
        assert order == [], "callbacks ran inside set_result"
        await let_callbacks_run()
        return order

    assert run_on(main) == [("a", 1), ("b", 1), ("c", 1)]


def test_callback_added_to_done_future_is_scheduled_at_once(run_on: Run) -> None:
    async def main() -> list[int]:
        fut: Future[int] = Future()
        fut.set_result(5)
        seen: list[int] = []
        fut.add_done_callback(lambda f: seen.append(f.result()))
        assert seen == []
        await let_callbacks_run()
        return seen

    assert run_on(main) == [5]


def test_callbacks_of_several_futures_run_in_completion_order(run_on: Run) -> None:
    async def main() -> list[int]:
        futures: list[Future[int]] = [Future() for _ in range(20)]
        seen: list[int] = []
        for fut in futures:
            fut.add_done_callback(lambda f: seen.append(f.result()))
        for i in reversed(range(20)):
            futures[i].set_result(i)
        await let_callbacks_run()
        return seen

    assert run_on(main) == list(reversed(range(20)))


def test_remove_done_callback(run_on: Run) -> None:
    async def main() -> list[str]:
        fut: Future[int] = Future()
        seen: list[str] = []

        def keep(f: Future[int]) -> None:
            seen.append("keep")

        def drop(f: Future[int]) -> None:
            seen.append("drop")

        fut.add_done_callback(drop)
        fut.add_done_callback(keep)
        fut.add_done_callback(drop)
        assert fut.remove_done_callback(drop) == 2
        assert fut.remove_done_callback(drop) == 0
        fut.set_result(0)
        await let_callbacks_run()
        return seen

    assert run_on(main) == ["keep"]


def test_coroutine_function_callback_is_refused(run_on: Run) -> None:
    """The tutorial's broken example: a coroutine function as a done-callback never runs."""

    async def handler(fut: Future[int]) -> None:
        raise AssertionError("never runs")

    async def main() -> None:
        fut: Future[int] = Future()
        with pytest.raises(TypeError, match=r"coroutine function or coroutine.*start_soon"):
            fut.add_done_callback(handler)
        coro = handler(fut)
        try:
            with pytest.raises(TypeError, match="coroutine"):
                fut.add_done_callback(coro)  # type: ignore[arg-type]
        finally:
            coro.close()
        with pytest.raises(TypeError, match="callable"):
            fut.add_done_callback(42)  # type: ignore[arg-type]

    run_on(main)


def test_the_fix_the_error_suggests_works(run_on: Run) -> None:
    async def main() -> list[int]:
        seen: list[int] = []
        handled = anyio.Event()

        async def handler(fut: Future[int]) -> None:
            await anyio.sleep(0)
            seen.append(fut.result())
            handled.set()

        async with anyio.create_task_group() as tg:
            fut: Future[int] = Future()
            fut.add_done_callback(lambda f: tg.start_soon(handler, f))
            fut.set_result(3)
            with anyio.fail_after(5):
                await handled.wait()
        return seen

    assert run_on(main) == [3]


def test_raising_callback_is_reported_and_others_still_run(
    run_on: Run, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(fut: Future[int]) -> None:
        raise RuntimeError("callback failed")

    async def main() -> list[str]:
        fut: Future[int] = Future()
        seen: list[str] = []
        fut.add_done_callback(lambda f: seen.append("before"))
        fut.add_done_callback(broken)
        fut.add_done_callback(lambda f: seen.append("after"))
        fut.set_result(0)
        await let_callbacks_run()
        return seen

    with caplog.at_level(logging.ERROR, logger="anybench"):
        assert run_on(main) == ["before", "after"]
    [record] = [r for r in caplog.records if r.name == "anybench"]
    assert "Exception in callback" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_await_suspends_until_another_task_sets_the_result(run_on: Run) -> None:
    async def main() -> list[str]:
        fut: Future[str] = Future()
        events: list[str] = []

        async def waiter() -> None:
            events.append("waiting")
            events.append(await fut)

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            events.append("setting")
            fut.set_result("woke")
        # A second await of a done future returns at once, with the same result.
        assert await fut == "woke"
        return events

    assert run_on(main) == ["waiting", "setting", "woke"]


def test_cancelling_the_awaiter_leaves_the_future_pending(run_on: Run) -> None:
    async def main() -> None:
        fut: Future[int] = Future()
        with anyio.move_on_after(0.01) as scope:
            await fut
        assert scope.cancelled_caught
        assert not fut.done()
        fut.set_result(1)
        assert await fut == 1

    run_on(main)


def test_future_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="no asyncio or trio event loop"):
        Future()


def test_callable_object_with_async_call_is_refused(run_on: Run) -> None:
    class Handler:
        async def __call__(self, fut: Future[int]) -> None:
            raise AssertionError("never runs")

    async def handler(fut: Future[int]) -> None:
        raise AssertionError("never runs")

    async def main() -> None:
        fut: Future[int] = Future()
        with pytest.raises(TypeError, match="coroutine function or coroutine"):
            fut.add_done_callback(Handler())
        with pytest.raises(TypeError, match="coroutine function or coroutine"):
            fut.add_done_callback(partial(Handler()))
        with pytest.raises(TypeError, match="coroutine function or coroutine"):
            fut.add_done_callback(partial(handler))
        fut.add_done_callback(print)  # a builtin, a class and a bound method are plain callables
        fut.add_done_callback(str)
        sink: list[object] = []
        fut.add_done_callback(sink.append)
        assert fut.remove_done_callback(print) == 1

    run_on(main)


def test_future_is_weakly_referenceable(run_on: Run) -> None:
    async def main() -> None:
        fut: Future[int] = Future()
        ref = weakref.ref(fut)
        assert ref() is fut
        del fut
        assert ref() is None

    run_on(main)


def test_retrieving_an_exception_does_not_grow_its_traceback(run_on: Run) -> None:
    async def main() -> list[int]:
        fut: Future[int] = Future()
        try:
            raise ValueError("boom")
        except ValueError as exc:
            fut.set_exception(exc)
        lengths = []
        for _ in range(3):
            try:
                fut.result()
            except ValueError as exc:
                lengths.append(len(traceback.extract_tb(exc.__traceback__)))
        for _ in range(3):
            try:
                await fut
            except ValueError as exc:
                lengths.append(len(traceback.extract_tb(exc.__traceback__)))
        return lengths

    lengths = run_on(main)
    assert lengths[:3] == [lengths[0]] * 3
    assert lengths[3:] == [lengths[3]] * 3


variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="unset")


def test_callbacks_run_in_the_context_of_add_done_callback(run_on: Run) -> None:
    async def main() -> tuple[list[str], str]:
        fut: Future[None] = Future()
        seen: list[str] = []

        def record(f: Future[None]) -> None:
            seen.append(variable.get())

        def change(f: Future[None]) -> None:
            variable.set("changed by a callback")

        variable.set("at add_done_callback")
        fut.add_done_callback(record)
        fut.add_done_callback(change)
        given = contextvars.copy_context()
        given.run(variable.set, "given")
        fut.add_done_callback(record, context=given)
        variable.set("at set_result")
        fut.set_result(None)
        await let_callbacks_run()
        fut.add_done_callback(record)  # to a done future: scheduled with the current context
        await let_callbacks_run()
        return seen, variable.get()

    assert run_on(main) == (["at add_done_callback", "given", "at set_result"], "at set_result")


def test_awaiters_are_woken_as_done_callbacks_in_registration_order(
    run_on: Run, runtime: Runtime
) -> None:
    """In asyncio an await is a done-callback; on trio an awaiter resumes after the callbacks."""

    async def main() -> list[str]:
        fut: Future[None] = Future()
        order: list[str] = []

        async def waiter() -> None:
            await fut
            order.append("awaiter")

        fut.add_done_callback(lambda f: order.append("callback before"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            fut.add_done_callback(lambda f: order.append("callback after"))
            fut.set_result(None)
        return order

    order = run_on(main)
    if runtime.backend == "trio":
        # The awaiting task is made runnable in its turn, but trio runs tasks only between
        # passes of callbacks (see the README, "The portable future").
        assert order == ["callback before", "callback after", "awaiter"]
    else:
        assert order == ["callback before", "awaiter", "callback after"]


def test_one_checkpoint_after_completing_a_future_is_enough_for_its_callbacks(
    run_on: Run,
) -> None:
    """On trio, one checkpoint was not enough a third of the time: trio shuffles each batch."""

    async def main() -> int:
        late = 0
        stop = anyio.Event()

        async def busy() -> None:  # other ready tasks, in the same batches
            while not stop.is_set():
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(busy)
            for _ in range(200):
                fut: Future[None] = Future()
                seen: list[Future[None]] = []
                fut.add_done_callback(seen.append)
                fut.set_result(None)
                await anyio.sleep(0)
                late += not seen
            stop.set()
        return late

    assert run_on(main) == 0


class CustomBaseException(BaseException):
    pass


@pytest.mark.parametrize("exc_type", [GeneratorExit, CustomBaseException])
def test_callback_raising_another_base_exception_is_reported_and_the_loop_goes_on(
    run_on: Run, caplog: pytest.LogCaptureFixture, exc_type: type[BaseException]
) -> None:
    def broken(fut: Future[int]) -> None:
        raise exc_type("from a callback")

    async def main() -> list[str]:
        fut: Future[int] = Future()
        seen: list[str] = []
        fut.add_done_callback(lambda f: seen.append("before"))
        fut.add_done_callback(broken)
        fut.add_done_callback(lambda f: seen.append("after"))
        fut.set_result(0)
        await let_callbacks_run()
        seen.append("main goes on")
        return seen

    with caplog.at_level(logging.ERROR, logger="anybench"):
        assert run_on(main) == ["before", "after", "main goes on"]
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "anybench"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], exc_type)


def _rloop_finding(runtime: Runtime, request: pytest.FixtureRequest, finding: str) -> None:
    if runtime.name == "rloop":
        request.applymarker(pytest.mark.xfail(reason=f"rloop 0.5: {finding}", strict=True))


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_or_system_exit_in_a_callback_ends_the_run(
    runtime: Runtime, request: pytest.FixtureRequest, exc_type: type[BaseException]
) -> None:
    """As asyncio's loop: it leaves anyio.run as itself, the main task is cancelled, and the
    callbacks queued after it still run (trio used to crash with TrioInternalError)."""
    _rloop_finding(runtime, request, "its loop catches and logs these from any callback")
    seen: list[str] = []

    def fatal(fut: Future[None]) -> None:
        raise exc_type("from a callback")

    async def main() -> None:
        fut: Future[None] = Future()
        fut.add_done_callback(lambda f: seen.append("before"))
        fut.add_done_callback(fatal)
        fut.add_done_callback(lambda f: seen.append("after"))
        try:
            async with anyio.create_task_group() as tg:
                # The callbacks run at the loop's next turn; a runtime that swallows the
                # exception (rloop) sleeps this out, and the run ends without it.
                tg.start_soon(anyio.sleep, 1)
                fut.set_result(None)
                await anyio.sleep(1)
        except anyio.get_cancelled_exc_class():
            seen.append("main cancelled")
            raise
        seen.append("main went on")

    with pytest.raises(exc_type, match="from a callback"):
        anyio.run(main, backend=runtime.backend, backend_options=runtime.backend_options())
    assert seen == ["before", "after", "main cancelled"]


def test_a_future_used_after_its_run_says_the_loop_is_closed(
    run_on: Run, runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    """As asyncio: on trio, callbacks used to be accepted silently and never run."""
    _rloop_finding(runtime, request, "call_soon on a closed loop accepts the callback silently")

    async def main() -> tuple[Future[int], Future[int]]:
        pending: Future[int] = Future()
        pending.add_done_callback(lambda f: None)
        done: Future[int] = Future()
        done.set_result(1)
        return pending, done

    pending, done = run_on(main)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        done.add_done_callback(lambda f: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        pending.set_result(2)


@pytest.mark.parametrize("first_future", ["made before shutdown", "made during shutdown"])
def test_a_future_completed_during_shutdown_runs_its_callbacks(
    run_on: Run, first_future: str
) -> None:
    """From an async generator's finally as the run ends: trio's system tasks are gone by then."""
    seen: list[str] = []
    suspended: list[object] = []

    async def generator() -> Any:
        try:
            yield
        finally:
            fut: Future[str] = Future()
            fut.add_done_callback(lambda f: seen.append(f.result()))
            fut.set_result("ran")

    async def main() -> None:
        if first_future == "made before shutdown":
            Future()
        gen = generator()
        suspended.append(gen)  # the run finalizes it as it ends
        await gen.asend(None)

    run_on(main)
    assert seen == ["ran"]
