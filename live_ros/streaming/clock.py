"""StreamClock: camera stamps to stream seconds that only go forward, at the real rate.

Stream time 0 is the first frame, and a well-behaved camera's stamps are used as they are, so
the model's clock is the camera's however late or bursty delivery is. Stamps are not always
well behaved: a driver that leaves them at 0, a clock that jumps by an hour, a looped video or
a restarted simulation that goes back. The clock detects each kind, says which it was, and
keeps stream time advancing at the rate the frames really arrive (the receive clock), re-based
on the new stamps so the camera's timing is used again from the next frame on.

Offline (a recording: no receive time) the stamps are trusted except for going back.
Plain Python, no ROS; not thread-safe on its own (the caller holds one lock around it).
"""

from __future__ import annotations

#: How each stamp was read (StreamClock.read's second value).
OK = 'ok'
FIRST = 'first'
STALE = 'stale'        # older than one seen already, by less than ``restart_after``: drop it
ZERO = 'zero stamp'    # unset (0) stamp: timed by its arrival instead
JUMP = 'stamp jump'    # ahead of the receive clock by more than ``max_jump_s``
BACK = 'stamp back'    # behind the newest stamp by more than ``restart_after``
#: The kinds that are faults of the camera's clock (counted, logged once, on /diagnostics).
FAULTS = (ZERO, JUMP, BACK)
#: The least a re-based frame moves the stream on, so stream time never stands still.
MIN_STEP_S = 1e-3


class StreamClock:
    """Map camera stamps (seconds) to stream seconds, robust to bad stamps."""

    def __init__(self, max_jump_s: float = 5.0, restart_after: float = 1.0):
        self.max_jump_s = float(max_jump_s)
        self.restart_after = float(restart_after)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is stream time 0."""
        self._origin = None     # stamp of stream time 0, moved by each re-base
        self._newest = None     # newest valid stamp seen
        self._last_t = None     # stream time of the last frame read
        self._last_received = None
        self.counts = {kind: 0 for kind in FAULTS + (STALE,)}

    @property
    def now(self) -> float | None:
        """Stream time of the newest frame read (None before the first)."""
        return self._last_t

    def read(self, stamp: float, received: float | None = None) -> tuple[float | None, str]:
        """Return (stream time, kind) of a frame stamped ``stamp``, received at ``received``.

        ``received``: a monotonic clock in seconds when the frame arrived (None offline).
        Stream time is None for a stale frame, which should be dropped.
        """
        stamp = float(stamp)
        elapsed = None
        if received is not None and self._last_received is not None:
            elapsed = max(0.0, received - self._last_received)
        if self._last_t is None:
            kind = FIRST if stamp > 0.0 else ZERO
            t = 0.0
            if stamp > 0.0:
                self._origin, self._newest = stamp, stamp
        elif stamp <= 0.0:
            kind, t = ZERO, self._last_t + (elapsed or 0.0)
        elif self._newest is None:   # the first stamped frame after unstamped ones
            kind, t = OK, self._last_t + (elapsed or 0.0)
            self._origin, self._newest = stamp - t, stamp
        elif stamp <= self._newest:
            if self._newest - stamp <= self.restart_after:
                self.counts[STALE] += 1
                return None, STALE
            kind, t = BACK, self._rebase(stamp, elapsed)
        elif elapsed is not None and stamp - self._newest - elapsed > self.max_jump_s:
            kind, t = JUMP, self._rebase(stamp, elapsed)
        else:
            kind, t = OK, max(stamp - self._origin, self._last_t)
            self._newest = stamp
        if kind in FAULTS:
            self.counts[kind] += 1
        self._last_t = t
        if received is not None:
            self._last_received = received
        return t, kind

    def _rebase(self, stamp, elapsed):
        """Continue at the receive clock's rate; later stamps count from this one."""
        t = self._last_t + max(elapsed or 0.0, MIN_STEP_S)
        self._origin, self._newest = stamp - t, stamp
        return t
