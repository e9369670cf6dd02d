"""The portable future's semantics, on every runtime."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from anybench import Future, FutureCancelledError, InvalidStateError

Run = Callable[[Callable[[], Awaitable[Any]]], Any]


async def let_callbacks_run() -> None:
    """Yield to the scheduler until callbacks scheduled so far have run.

    On trio the callback runner and the yielding task may be woken in the same batch, in either
    order, so one checkpoint is not always enough; two are (see anybench._adapter).
    """
    await anyio.sleep(0)
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
            fut.add_done_callback(lambda f, name=name: order.append((name, f.result())))
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
