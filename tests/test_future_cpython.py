"""CPython's own future tests (``Lib/test/test_asyncio/test_futures.py``), ported to our Future.

Each test keeps its CPython name and runs on every runtime of the registry, on ``Future`` and on a
subclass of it (CPython runs them on its C future, a subclass of it, and its Python future).
``test_utils.run_briefly(loop)`` becomes one ``await anyio.sleep(0)``, the mock of asyncio's
logger becomes ``caplog`` on the ``anybench`` logger, and ``asyncio.CancelledError`` becomes
:class:`anybench.FutureCancelledError` (a deliberate difference, see the README).

Ported: every test of ``BaseFutureDoneCallbackTests``, and of ``BaseFutureTests``:
test_generic_alias, test_initial_state, test_constructor_without_loop,
test_constructor_use_running_loop (without ``get_loop``), test_constructor_positional,
test_future_cancel_message_getter (the message as the exception's argument, not the private
``_cancel_message``), test_cancel, test_result, test_exception, test_exception_class,
test_yield_from_twice (as awaiting twice), test_future_repr (without debug mode), the seven
test_tb_logger_* tests, test_future_exception_never_retrieved, test_future_stop_iteration_args,
test_future_iter_throw and test_future_del_collect.

Left out, as they test asyncio itself rather than the behaviour of a future:

* DuckTests, test_isfuture, test_wrap_future*: ``asyncio.wrap_future``, ``asyncio.ensure_future``
  and ``asyncio.isfuture`` on asyncio's duck-typing protocol (``_asyncio_future_blocking``) and
  the ``concurrent.futures`` bridge. anybench.Future is not an asyncio future, on purpose: it
  must work where there is no asyncio loop (trio).
* test_constructor_use_global_loop and the ``loop=`` argument, ``get_loop()`` and
  BaseFutureInheritanceTests (``get_loop()`` of a subclass that skipped ``__init__``): asyncio's
  event loop policy and loop objects. anybench.Future binds to the running loop, whichever it is.
* test_uninitialized and test_future_del_segfault: they guard CPython's C accelerator against
  crashing when ``__init__`` is skipped or attributes are deleted.
* test_future_cancel_message_setter, test_log_traceback, test_copy_state and
  test_set_result_unless_cancelled: private attributes and helpers of asyncio
  (``_cancel_message``, ``_log_traceback``, ``_copy_future_state``,
  ``_set_result_unless_cancelled``).
* test_iter and the ``yield from`` half of test_yield_from_twice: generator-based coroutines
  (``yield from future``), which asyncio itself no longer supports since Python 3.11; anybench's
  Future has no ``__iter__``.
* test_future_source_traceback and the "created at" part of test_future_repr: asyncio's debug
  mode.
"""

from __future__ import annotations

import gc
import logging
import re
import warnings
from collections.abc import Awaitable, Callable
from types import GenericAlias
from typing import Any

import anyio
import pytest

from anybench import Future, FutureCancelledError, InvalidStateError

Run = Callable[[Callable[[], Awaitable[Any]]], Any]


class SubFuture(Future[Any]):
    pass


@pytest.fixture(params=[Future, SubFuture], ids=["Future", "subclass"])
def cls(request: pytest.FixtureRequest) -> type[Future[Any]]:
    """The class under test, as CPython runs its tests on a future and on a subclass of it."""
    future_class: type[Future[Any]] = request.param
    return future_class


async def run_briefly() -> None:
    """One pass of the scheduler: what test_utils.run_briefly(loop) does in CPython's tests."""
    await anyio.sleep(0)


def _fakefunc(f: object) -> object:
    return f


def first_cb() -> None:
    pass


def last_cb() -> None:
    pass


# -- BaseFutureTests -----------------------------------------------------------------------------


def test_generic_alias() -> None:
    future = Future[str]
    assert future.__args__ == (str,)  # type: ignore[attr-defined]
    assert isinstance(future, GenericAlias)


def test_initial_state(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        f = cls()
        assert not f.cancelled()
        assert not f.done()
        f.cancel()
        assert f.cancelled()

    run_on(main)


def test_constructor_without_loop(cls: type[Future[Any]]) -> None:
    with pytest.raises(RuntimeError, match="no asyncio or trio event loop"):
        cls()


def test_constructor_use_running_loop(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> Future[Any]:
        return cls()

    f = run_on(main)
    assert not f.done()
    f.cancel()  # no callbacks: nothing to schedule on the finished run


def test_constructor_positional(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        with pytest.raises(TypeError):
            cls(42)  # type: ignore[call-arg]

    run_on(main)


def test_future_cancel_message_getter(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        f = cls()
        f.cancel("my message")
        with pytest.raises(FutureCancelledError) as caught:
            await f
        assert caught.value.args == ("my message",)
        with pytest.raises(FutureCancelledError) as caught:
            f.result()
        assert caught.value.args == ("my message",)
        plain = cls()
        plain.cancel()
        with pytest.raises(FutureCancelledError) as caught:
            plain.exception()
        assert caught.value.args == ()

    run_on(main)


def test_cancel(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        f = cls()
        assert f.cancel()
        assert f.cancelled()
        assert f.done()
        with pytest.raises(FutureCancelledError):
            f.result()
        with pytest.raises(FutureCancelledError):
            f.exception()
        with pytest.raises(InvalidStateError):
            f.set_result(None)
        with pytest.raises(InvalidStateError):
            f.set_exception(None)  # type: ignore[arg-type]
        assert not f.cancel()

    run_on(main)


def test_result(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        f = cls()
        with pytest.raises(InvalidStateError):
            f.result()

        f.set_result(42)
        assert not f.cancelled()
        assert f.done()
        assert f.result() == 42
        assert f.exception() is None
        with pytest.raises(InvalidStateError):
            f.set_result(None)
        with pytest.raises(InvalidStateError):
            f.set_exception(None)  # type: ignore[arg-type]
        assert not f.cancel()

    run_on(main)


def test_exception(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        exc = RuntimeError()
        f = cls()
        with pytest.raises(InvalidStateError):
            f.exception()

        # StopIteration cannot be raised into a Future - CPython issue26221
        with pytest.raises(TypeError, match=r"StopIteration .* cannot be raised"):
            f.set_exception(StopIteration)

        f.set_exception(exc)
        assert not f.cancelled()
        assert f.done()
        with pytest.raises(RuntimeError):
            f.result()
        assert f.exception() is exc
        with pytest.raises(InvalidStateError):
            f.set_result(None)
        with pytest.raises(InvalidStateError):
            f.set_exception(None)  # type: ignore[arg-type]
        assert not f.cancel()

    run_on(main)


def test_exception_class(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        f = cls()
        f.set_exception(RuntimeError)
        assert isinstance(f.exception(), RuntimeError)

    run_on(main)


def test_yield_from_twice(run_on: Run, cls: type[Future[Any]]) -> None:
    """As awaiting twice: the first await suspends, the second returns at once."""

    async def main() -> list[object]:
        f = cls()
        steps: list[object] = []

        async def fixture() -> None:
            steps.append("A")
            x = await f
            steps.append(("B", x))
            # The second await of f does not yield: nothing can run in between.
            y = await f
            steps.append(("C", y))

        async with anyio.create_task_group() as tg:
            tg.start_soon(fixture)
            await anyio.wait_all_tasks_blocked()
            assert steps == ["A"]
            f.set_result(42)
        return steps

    assert run_on(main) == ["A", ("B", 42), ("C", 42)]


def _source(func: Callable[..., object]) -> str:
    code = func.__code__
    return re.escape(f"{func.__qualname__}() at {code.co_filename}:{code.co_firstlineno}")


def test_future_repr(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        name = cls.__name__
        f_pending = cls()
        assert repr(f_pending) == f"<{name} pending>"
        f_pending.cancel()

        f_cancelled = cls()
        f_cancelled.cancel()
        assert repr(f_cancelled) == f"<{name} cancelled>"

        f_result = cls()
        f_result.set_result(4)
        assert repr(f_result) == f"<{name} finished result=4>"
        assert f_result.result() == 4

        exc = RuntimeError()
        f_exception = cls()
        f_exception.set_exception(exc)
        assert repr(f_exception) == f"<{name} finished exception=RuntimeError()>"
        assert f_exception.exception() is exc

        f_one_callbacks = cls()
        f_one_callbacks.add_done_callback(_fakefunc)
        fake_repr = _source(_fakefunc)
        assert re.fullmatch(rf"<{name} pending cb=\[{fake_repr}\]>", repr(f_one_callbacks))
        f_one_callbacks.cancel()
        assert repr(f_one_callbacks) == f"<{name} cancelled>"

        f_two_callbacks = cls()
        f_two_callbacks.add_done_callback(first_cb)  # type: ignore[arg-type]
        f_two_callbacks.add_done_callback(last_cb)  # type: ignore[arg-type]
        first_repr = _source(first_cb)
        last_repr = _source(last_cb)
        assert re.fullmatch(
            rf"<{name} pending cb=\[{first_repr}, {last_repr}\]>", repr(f_two_callbacks)
        )

        f_many_callbacks = cls()
        f_many_callbacks.add_done_callback(first_cb)  # type: ignore[arg-type]
        for _ in range(8):
            f_many_callbacks.add_done_callback(_fakefunc)
        f_many_callbacks.add_done_callback(last_cb)  # type: ignore[arg-type]
        cb_regex = rf"{first_repr}, <8 more>, {last_repr}"
        assert re.fullmatch(rf"<{name} pending cb=\[{cb_regex}\]>", repr(f_many_callbacks))
        f_many_callbacks.cancel()
        assert repr(f_many_callbacks) == f"<{name} cancelled>"
        # The callbacks of f_two_callbacks take no argument: leave it pending, never run them.

    run_on(main)


@pytest.fixture
def anybench_errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the ``anybench`` logger's errors (CPython mocks asyncio's logger instead)."""
    caplog.set_level("ERROR", logger="anybench")
    return caplog


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "anybench" and r.levelname == "ERROR"]


def test_tb_logger_abandoned(
    run_on: Run, cls: type[Future[Any]], anybench_errors: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        fut = cls()
        del fut
        gc.collect()

    run_on(main)
    assert _errors(anybench_errors) == []


def test_tb_logger_not_called_after_cancel(
    run_on: Run, cls: type[Future[Any]], anybench_errors: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        fut = cls()
        fut.set_exception(Exception())
        fut.cancel()
        del fut
        gc.collect()

    run_on(main)
    assert _errors(anybench_errors) == []


def test_tb_logger_result_unretrieved(
    run_on: Run, cls: type[Future[Any]], anybench_errors: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        fut = cls()
        fut.set_result(42)
        del fut
        gc.collect()

    run_on(main)
    assert _errors(anybench_errors) == []


def test_tb_logger_result_retrieved(
    run_on: Run, cls: type[Future[Any]], anybench_errors: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        fut = cls()
        fut.set_result(42)
        fut.result()
        del fut
        gc.collect()

    run_on(main)
    assert _errors(anybench_errors) == []


def test_tb_logger_exception_unretrieved(
    run_on: Run, cls: type[Future[Any]], anybench_errors: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        fut = cls()
        fut.set_exception(RuntimeError("boom"))
        del fut
        await run_briefly()
        gc.collect()

    run_on(main)
    assert len(_errors(anybench_errors)) == 1


def test_tb_logger_exception_retrieved(
    run_on: Run, cls: type[Future[Any]], anybench_errors: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        fut = cls()
        fut.set_exception(RuntimeError("boom"))
        fut.exception()
        del fut
        gc.collect()

    run_on(main)
    assert _errors(anybench_errors) == []


def test_tb_logger_exception_result_retrieved(
    run_on: Run, cls: type[Future[Any]], anybench_errors: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        fut = cls()
        fut.set_exception(RuntimeError("boom"))
        with pytest.raises(RuntimeError):
            fut.result()
        del fut
        gc.collect()

    run_on(main)
    assert _errors(anybench_errors) == []


def test_future_exception_never_retrieved(
    run_on: Run, cls: type[Future[Any]], anybench_errors: pytest.LogCaptureFixture
) -> None:
    def memory_error() -> BaseException:
        try:
            raise MemoryError()
        except BaseException as exc:
            return exc

    exc = memory_error()

    async def main() -> None:
        future: Future[Any] | None = cls()
        assert future is not None
        future.set_exception(exc)
        future = None
        await run_briefly()
        gc.collect()

    run_on(main)
    [record] = _errors(anybench_errors)
    assert record.exc_info == (type(exc), exc, exc.__traceback__)
    assert re.match(f"^{cls.__name__} exception was never retrieved\n", record.getMessage())


def test_future_stop_iteration_args(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        fut = cls()
        fut.set_result((1, 2))
        fi = fut.__await__()
        with pytest.raises(StopIteration) as stop:
            fi.send(None)
        assert stop.value.args[0] == (1, 2)

    run_on(main)


def test_future_iter_throw(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        fut = cls()
        with warnings.catch_warnings():
            # Python 3.12 deprecates the three-argument throw() these calls use.
            warnings.simplefilter("ignore", DeprecationWarning)
            fi = fut.__await__()
            with pytest.raises(TypeError):
                fi.throw(Exception, Exception("elephant"), 32)  # type: ignore[call-overload]
            fi = fut.__await__()
            with pytest.raises(TypeError):
                fi.throw(Exception("elephant"), Exception("elephant"))  # type: ignore[call-overload]
            # https://github.com/python/cpython/issues/101326
            fi = fut.__await__()
            with pytest.raises(ValueError, match=r"^$"):
                fi.throw(ValueError, None, None)
            fi = fut.__await__()
            with pytest.raises(TypeError):
                fi.throw(list)  # type: ignore[arg-type]
        fut.cancel()

    run_on(main)


def test_future_del_collect(run_on: Run, cls: type[Future[Any]]) -> None:
    class Evil:
        def __del__(self) -> None:
            gc.collect()

    async def main() -> None:
        for _ in range(100):
            fut = cls()
            fut.set_result(Evil())

    # What is alive now is moved out of the collector's sight (gc.freeze), so that each of the
    # hundred collections in a __del__ scans the futures' garbage, not the whole test process
    # (about 10 ms each with matplotlib and scipy loaded): the same collections, 1 s faster.
    gc.freeze()
    try:
        run_on(main)
    finally:
        gc.unfreeze()


# -- BaseFutureDoneCallbackTests -----------------------------------------------------------------


def _make_callback(bag: list[object], thing: object) -> Callable[[object], None]:
    # Create a callback function that appends thing to bag.
    def bag_appender(future: object) -> None:
        bag.append(thing)

    return bag_appender


def test_callbacks_remove_first_callback(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        bag: list[object] = []
        f = cls()

        cb1 = _make_callback(bag, 42)
        cb2 = _make_callback(bag, 17)
        cb3 = _make_callback(bag, 100)

        f.add_done_callback(cb1)
        f.add_done_callback(cb2)
        f.add_done_callback(cb3)

        f.remove_done_callback(cb1)
        f.remove_done_callback(cb1)

        assert bag == []
        f.set_result("foo")

        await run_briefly()

        assert bag == [17, 100]
        assert f.result() == "foo"

    run_on(main)


def test_callbacks_remove_first_and_second_callback(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        bag: list[object] = []
        f = cls()

        cb1 = _make_callback(bag, 42)
        cb2 = _make_callback(bag, 17)
        cb3 = _make_callback(bag, 100)

        f.add_done_callback(cb1)
        f.add_done_callback(cb2)
        f.add_done_callback(cb3)

        f.remove_done_callback(cb1)
        f.remove_done_callback(cb2)
        f.remove_done_callback(cb1)

        assert bag == []
        f.set_result("foo")

        await run_briefly()

        assert bag == [100]
        assert f.result() == "foo"

    run_on(main)


def test_callbacks_remove_third_callback(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        bag: list[object] = []
        f = cls()

        cb1 = _make_callback(bag, 42)
        cb2 = _make_callback(bag, 17)
        cb3 = _make_callback(bag, 100)

        f.add_done_callback(cb1)
        f.add_done_callback(cb2)
        f.add_done_callback(cb3)

        f.remove_done_callback(cb3)
        f.remove_done_callback(cb3)

        assert bag == []
        f.set_result("foo")

        await run_briefly()

        assert bag == [42, 17]
        assert f.result() == "foo"

    run_on(main)


def test_callbacks_invoked_on_set_result(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        bag: list[object] = []
        f = cls()
        f.add_done_callback(_make_callback(bag, 42))
        f.add_done_callback(_make_callback(bag, 17))

        assert bag == []
        f.set_result("foo")

        await run_briefly()

        assert bag == [42, 17]
        assert f.result() == "foo"

    run_on(main)


def test_callbacks_invoked_on_set_exception(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        bag: list[object] = []
        f = cls()
        f.add_done_callback(_make_callback(bag, 100))

        assert bag == []
        exc = RuntimeError()
        f.set_exception(exc)

        await run_briefly()

        assert bag == [100]
        assert f.exception() is exc

    run_on(main)


def test_remove_done_callback(run_on: Run, cls: type[Future[Any]]) -> None:
    async def main() -> None:
        bag: list[object] = []
        f = cls()
        cb1 = _make_callback(bag, 1)
        cb2 = _make_callback(bag, 2)
        cb3 = _make_callback(bag, 3)

        # Add one cb1 and one cb2.
        f.add_done_callback(cb1)
        f.add_done_callback(cb2)

        # One instance of cb2 removed. Now there's only one cb1.
        assert f.remove_done_callback(cb2) == 1

        # Never had any cb3 in there.
        assert f.remove_done_callback(cb3) == 0

        # After this there will be 6 instances of cb1 and one of cb2.
        f.add_done_callback(cb2)
        for _ in range(5):
            f.add_done_callback(cb1)

        # Remove all instances of cb1. One cb2 remains.
        assert f.remove_done_callback(cb1) == 6

        assert bag == []
        f.set_result("foo")

        await run_briefly()

        assert bag == [2]
        assert f.result() == "foo"

    run_on(main)


def test_remove_done_callbacks_list_mutation(run_on: Run, cls: type[Future[Any]]) -> None:
    # see http://bugs.python.org/issue28963 for details

    async def main() -> None:
        fut = cls()
        fut.add_done_callback(str)

        for _ in range(63):
            fut.add_done_callback(id)

        class evil:
            def __eq__(self, other: object) -> bool:
                fut.remove_done_callback(id)
                return False

        # Beyond CPython's test, which only checks that this does not crash: nothing matched
        # evil, so nothing counts as removed by this call, and what __eq__ removed stays removed.
        assert fut.remove_done_callback(evil()) == 0  # type: ignore[arg-type]
        assert fut.remove_done_callback(id) == 0
        assert fut.remove_done_callback(str) == 1

    run_on(main)


def test_remove_done_callbacks_list_clear(run_on: Run, cls: type[Future[Any]]) -> None:
    # see https://github.com/python/cpython/issues/97592 for details

    async def main() -> None:
        fut = cls()
        fut.add_done_callback(str)

        for _ in range(63):
            fut.add_done_callback(id)

        class evil:
            def __eq__(self, other: object) -> bool:
                fut.remove_done_callback(other)  # type: ignore[arg-type]
                return False

        assert fut.remove_done_callback(evil()) == 0  # type: ignore[arg-type]
        assert fut.remove_done_callback(str) == 0
        assert fut.remove_done_callback(id) == 0

    run_on(main)


def test_schedule_callbacks_list_mutation_1(run_on: Run, cls: type[Future[Any]]) -> None:
    # see http://bugs.python.org/issue28963 for details

    def mut(f: Future[Any]) -> None:
        f.remove_done_callback(str)

    async def main() -> None:
        fut = cls()
        fut.add_done_callback(mut)
        fut.add_done_callback(str)
        fut.add_done_callback(str)
        fut.set_result(1)
        await run_briefly()

    run_on(main)


def test_schedule_callbacks_list_mutation_2(run_on: Run, cls: type[Future[Any]]) -> None:
    # see http://bugs.python.org/issue30828 for details

    async def main() -> None:
        fut = cls()
        fut.add_done_callback(str)

        for _ in range(63):
            fut.add_done_callback(id)

        max_extra_cbs = 100
        extra_cbs = 0

        class evil:
            def __eq__(self, other: object) -> bool:
                nonlocal extra_cbs
                extra_cbs += 1
                if extra_cbs < max_extra_cbs:
                    fut.add_done_callback(id)
                return False

        assert fut.remove_done_callback(evil()) == 0  # type: ignore[arg-type]
        # The scan ends, and the callbacks __eq__ added meanwhile are kept.
        assert 0 < extra_cbs < max_extra_cbs
        assert fut.remove_done_callback(id) == 63 + extra_cbs

    run_on(main)
