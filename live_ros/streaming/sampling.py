"""The frame sampler: which frames of a faster (or slower) source the model sees, at its rate.

One rule for every path, live and recorded (live_node, live-infer, bags, videos, training):
the grid of due times k / fps starts at the first frame, and the first frame at or after a
due time (within a tolerance for stamp jitter) is used, labelled with that due time;
the others are skipped. It needs no look-ahead, so a live node uses the newest frame the
moment it arrives, and a recording replayed offline picks exactly the frames the node would
have picked. Live stream times come from a StreamClock (clock.py), so they only go forward.

Offline, ``resample`` can also fill the grid: a due time that no frame of its own reached (a
source slower than the model rate) repeats the previous frame, so training and evaluation see
one frame per due time, as their labels count them.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Iterable, Iterator

from live_ros.streaming.clock import StreamClock

#: Relative slack for float stream times that sit exactly on a due time.
EPS = 1e-9


class FrameSampler:
    """Decide, frame by frame, which frames go to the model (thread-safe)."""

    def __init__(self, fps: float):
        self._lock = threading.Lock()
        self.set_fps(fps)
        self.reset()

    def set_fps(self, fps: float) -> None:
        """Change the model rate; the new grid starts at the last used frame."""
        fps = float(fps)
        if not fps > 0.0:
            raise ValueError(f'fps must be positive, got {fps}')
        with self._lock:
            self.period = 1.0 / fps
            # Jitter allowed around a due time: a tenth of the period, at most 20 ms. Stamps
            # taken when a frame is published or captured wander by milliseconds (a camera at
            # the model's own rate lost every frame that came a little early with 5 ms), yet a
            # 30 Hz camera's frame 33 ms before the due time is not taken for it.
            self.tolerance = min(0.1 * self.period, 0.02)
            if getattr(self, '_last_slot', None) is not None:
                self._anchor, self._last_slot = self._last_time, 0

    def reset(self) -> None:
        """Forget the grid, so the next frame is used and starts a new one."""
        with self._lock:
            self._anchor = self._last_slot = self._last_time = None

    def slot(self, t: float) -> int:
        """Index of the last due time at or before ``t`` (plus the tolerance)."""
        return math.floor((t - self._anchor + self.tolerance) / self.period + EPS)

    def offer(self, t: float) -> float | None:
        """Return the due time this frame fills (use it), or None (skip it).

        ``t``: the frame's stream time, never going back (StreamClock.read).
        """
        t = float(t)
        with self._lock:
            if self._anchor is None:
                self._anchor, self._last_slot = t, 0
                self._last_time = t
                return t
            k = self.slot(t)
            if k <= self._last_slot:
                return None
            self._last_slot, self._last_time = k, self._anchor + k * self.period
            return self._last_time

    def skipped_since(self, previous: float | None, due: float) -> int:
        """Due times strictly between two used ones (none of its own frames reached them)."""
        if previous is None:
            return 0
        return max(0, int(round((due - previous) / self.period)) - 1)


class LiveSampler:
    """A live frame's way in: StreamClock (stamp -> stream time), then FrameSampler.

    What live_node runs for every image, ROS-free so that a test can hold it against
    ``resample`` (the same frames from the same stamps). Thread-safe.
    """

    def __init__(self, fps: float, max_jump_s: float = 5.0, restart_after: float = 1.0):
        self._lock = threading.Lock()
        self.clock = StreamClock(max_jump_s, restart_after)
        self.sampler = FrameSampler(fps)

    def offer(self, stamp: float, received: float | None) -> tuple[float | None, str]:
        """Return (stream time or None, the clock's reading kind) for a frame stamped ``stamp``.

        ``received``: a monotonic clock (s) at arrival. None: skip the frame. A used frame
        keeps its own stream time (not the due time it fills), so what the model says is
        timed by the frame it saw, however the camera's stamps jitter around the grid.
        """
        with self._lock:
            t, kind = self.clock.read(stamp, received)
            used = t is not None and self.sampler.offer(t) is not None
            return (t if used else None), kind

    @property
    def now(self) -> float | None:
        """Stream time of the newest frame read (None before the first)."""
        with self._lock:
            return self.clock.now

    def reset(self) -> None:
        """Start a new stream: the next frame is stream time 0."""
        with self._lock:
            self.clock.reset()
            self.sampler.reset()


def resample(timed: Iterable[tuple[float, Any]], fps: float, fill: bool = True,
             max_frames: int | None = None) -> Iterator[tuple[float, Any]]:
    """Yield (due time, item) of a recording's (time s, item) pairs, lazily.

    Times (from 0, a recording's own clock) go through the FrameSampler as live_node's frames
    do; one older than the newest is dropped, as live_node drops a stale frame. Items pass
    through untouched, so a caller can hand in undecoded messages and convert only the frames
    the model sees. ``fill``: repeat the previous item at due times no frame reached.
    """
    sampler = FrameSampler(fps)
    previous, newest, n = None, None, 0
    for t, item in timed:
        if newest is not None and t < newest:
            continue
        newest = t
        due = sampler.offer(t)
        if due is None:
            continue
        if fill:
            for j in range(sampler.skipped_since(previous[0] if previous else None, due)):
                if max_frames is not None and n >= max_frames:
                    return
                yield previous[0] + (j + 1) * sampler.period, previous[1]
                n += 1
        if max_frames is not None and n >= max_frames:
            return
        yield due, item
        n += 1
        previous = (due, item)
