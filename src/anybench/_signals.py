"""Stopping a long command without losing what it finished: the first Ctrl-C or SIGTERM stops
it, and no later one can cut short the saving of what finished."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: What stops a command: Ctrl-C, and ``kill`` (or nox stopping a session).
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopping:
    """The signals of one :func:`stopping` block."""

    def __init__(self) -> None:
        #: The signals this block handles: those not ignored when it began.
        self.signals: list[signal.Signals] = []
        self.is_deaf = False

    def deaf(self) -> None:
        """From now until the block ends, Ctrl-C and SIGTERM are ignored: what finished is
        being saved."""
        self.is_deaf = True
        for sig in self.signals:
            signal.signal(sig, signal.SIG_IGN)


_active: Stopping | None = None


@contextmanager
def stopping() -> Iterator[Stopping]:
    """Within the block, the first Ctrl-C or SIGTERM raises :class:`KeyboardInterrupt` (SIGTERM
    as Ctrl-C), and every later one is ignored until the block ends, so that a second press
    cannot cut short the saving of what finished; the handlers before it are then restored.
    A signal ignored when the block begins (a shell's background job ignores Ctrl-C) stays
    ignored. A block within another (a command's steps, each stoppable alone) is the outer one:
    it restores nothing. Off the main thread, where Python runs no handler, signals are left
    as they are and the block's ``deaf`` does nothing."""
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield Stopping()
        return
    if _active is not None:
        yield _active
        return
    stop = Stopping()

    def first(signum: int, frame: FrameType | None) -> None:
        if stop.is_deaf:  # came as the block turned deaf, before SIG_IGN was in place
            return
        stop.deaf()
        raise KeyboardInterrupt

    previous: dict[signal.Signals, Any] = {}
    _active = stop
    try:
        for sig in SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue
            previous[sig] = signal.signal(sig, first)
            stop.signals.append(sig)
        yield stop
    finally:
        _active = None
        stop.signals = []
        # A signal held while the handlers are put back goes to the restored one: none can
        # land halfway and leave this block's handler, deaf, in place.
        held = hasattr(signal, "pthread_sigmask")  # not on Windows
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS) if held else None
        try:
            for sig, handler in reversed(previous.items()):
                # None: a handler not installed from Python, which Python cannot put back.
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        finally:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
