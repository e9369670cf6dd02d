"""Stopping a long command without losing what it finished: the first Ctrl-C or SIGTERM stops
it, and no later one can cut short the saving of what finished."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: What stops a command: Ctrl-C, and ``kill`` (or nox stopping a session).
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopping:
    """The signals of one :func:`stopping` block."""

    def __init__(self, installed: bool) -> None:
        self._installed = installed

    def deaf(self) -> None:
        """From now until the block ends, Ctrl-C and SIGTERM are ignored: what finished is
        being saved."""
        if self._installed:
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_IGN)


_active: Stopping | None = None


@contextmanager
def stopping() -> Iterator[Stopping]:
    """Within the block, the first Ctrl-C or SIGTERM raises :class:`KeyboardInterrupt` (SIGTERM
    as Ctrl-C), and every later one is ignored until the block ends, so that a second press
    cannot cut short the saving of what finished; the handlers before it are then restored.
    A block within another (a command's steps, each stoppable alone) is the outer one: it
    restores nothing. Off the main thread, signals are left as they are."""
    global _active
    if _active is not None or threading.current_thread() is not threading.main_thread():
        yield _active or Stopping(installed=False)
        return
    stop = Stopping(installed=True)

    def first(signum: int, frame: FrameType | None) -> None:
        stop.deaf()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, first) for sig in SIGNALS}
    _active = stop
    try:
        yield stop
    finally:
        _active = None
        for sig, handler in previous.items():
            signal.signal(sig, handler)
