"""Turns at one model for several streams: a first-come, first-served lock.

Cameras of one node share one model in memory; each has its own session (KV cache) and
decoder thread, and every forward takes a turn. Python's Lock is not fair: a thread that
releases and takes it again at once (a long answer, token after token) would keep it and
stall the other cameras' frames. Here turns go in arrival order, so a camera waits at most
one forward of each other camera, and with one camera the lock is never contended.
"""

from __future__ import annotations

import threading


class FairLock:
    """A FIFO (ticket) lock: ``with lock:`` waits for the turns taken before it."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0

    def acquire(self) -> None:
        """Wait for this thread's turn."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()

    def release(self) -> None:
        """End the turn; the next in line goes."""
        with self._cond:
            self._serving += 1
            self._cond.notify_all()

    def __enter__(self) -> 'FairLock':
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def model_turns(model: object, part: str = 'llm') -> FairLock:
    """Return the one FairLock of ``model``'s ``part`` ('llm' or 'vision') for its streams."""
    return model.__dict__.setdefault(f'_live_turns_{part}', FairLock())
