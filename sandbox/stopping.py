"""Stopping a foreground sandbox command on a signal: SIGTERM (an IDE's stop button, `timeout`), SIGHUP
(the terminal closed) and SIGINT (Ctrl-C) all unwind the command the way Ctrl-C does.

Set by the command itself, not inherited: a shell that starts a command in the background without job
control has it ignore SIGINT, and Python then never raises KeyboardInterrupt.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Stopped(BaseException):
    """A stop signal arrived: unwind and stop everything, as Ctrl-C does."""


def raise_stopped(signum, frame) -> None:
    for other in STOP_SIGNALS:  # the stop under way finishes; a second signal must not cut it short
        signal.signal(other, signal.SIG_IGN)
    raise Stopped(signal.Signals(signum).name)


def stop_on_signals() -> None:
    """From now on a stop signal raises Stopped in the main thread (once; later ones are ignored)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, raise_stopped)
