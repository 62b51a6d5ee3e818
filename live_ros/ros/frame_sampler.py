"""Pick the frames the model sees from a faster camera stream, by header stamp.

The model runs at a fixed rate (2 fps in VideoLLM-online); a camera sends 15-60 Hz. Sampling
by the image's own stamp rather than by arrival time keeps the model's clock equal to the
camera's, however late or bursty DDS delivers. The sampler keeps a grid of due times anchored
at the first frame: the first frame at or after each due time is used, the rest are dropped.
A stamp that jumps back by more than ``restart_after`` seconds (a looped video, a restarted
simulation) starts a new grid; a stamp slightly older than the newest frame seen is stale
and dropped, so the newest frame always wins.

Plain Python, no ROS: the node converts ``header.stamp`` to seconds before asking.
"""

import threading

USE = 'use'
SKIP = 'skip'        # not due yet: the camera is faster than the model rate
STALE = 'stale'      # older than a frame already seen
RESTART = 'restart'  # time went back: new grid, frame used


class FrameSampler:
    """Decide, frame by frame, which camera frames go to the model (thread-safe)."""

    def __init__(self, fps, restart_after=1.0):
        self._lock = threading.Lock()
        self.restart_after = float(restart_after)
        self.set_fps(fps)
        self.reset()

    def set_fps(self, fps):
        """Change the model rate; the grid continues from the last used frame."""
        fps = float(fps)
        if not fps > 0.0:
            raise ValueError(f'fps must be positive, got {fps}')
        with self._lock:
            self.period = 1.0 / fps
            # Allow a little jitter around a due time, a tenth of the grid period or 5 ms.
            self._tolerance = min(0.1 * self.period, 0.005)

    def reset(self):
        """Forget the grid, so the next frame is used and anchors a new one."""
        with self._lock:
            self._next_due = None
            self._newest = None

    def offer(self, stamp):
        """Return USE, SKIP, STALE or RESTART for a frame with ``stamp`` seconds.

        USE and RESTART mean: give this frame to the model.
        """
        stamp = float(stamp)
        with self._lock:
            if self._newest is not None and stamp <= self._newest:
                if self._newest - stamp > self.restart_after:
                    self._anchor(stamp)
                    return RESTART
                return STALE
            self._newest = stamp
            if self._next_due is None:
                self._anchor(stamp)
                return USE
            if stamp + self._tolerance < self._next_due:
                return SKIP
            if stamp - self._next_due >= self.period:
                # A gap longer than a period (camera paused, frames lost): re-anchor here
                # instead of racing through the missed due times.
                self._anchor(stamp)
            else:
                self._next_due += self.period
            return USE

    def _anchor(self, stamp):
        self._newest = stamp
        self._next_due = stamp + self.period
