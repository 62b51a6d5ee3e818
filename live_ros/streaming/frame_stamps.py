"""Which camera frame a response follows: stream time back to the image's stamp.

A response carries the stamp of the frame after which the model spoke (the last frame at or
before its stream time), so a consumer lines the text up with the image: live_node keeps the
image headers, live-infer's bag recorder the bag's stamps. ROS-free: stamps are whatever the
caller stores (a Header, a (stamp_ns, frame_id) pair).
"""

import bisect

#: Stream times closer than this are the same frame (float seconds from integer stamps).
EPS = 1e-6


def stamp_ns(stamp):
    """builtin_interfaces/Time (or a bag's copy of it) as integer nanoseconds, exactly."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class FrameStamps:
    """Stamps of the frames the model saw, by ascending stream time.

    The oldest are forgotten beyond ``maxlen`` (None: keep all). Not thread-safe: the node
    holds its lock around it.
    """

    def __init__(self, maxlen=None):
        self.maxlen = maxlen
        self._times, self._stamps = [], []

    def add(self, stream_time, stamp):
        """Remember a frame handed to the model."""
        self._times.append(stream_time)
        self._stamps.append(stamp)
        if self.maxlen is not None and len(self._times) > self.maxlen:
            del self._times[0], self._stamps[0]

    def at(self, stream_time):
        """Return the stamp of the last frame at or before ``stream_time``, or None."""
        index = bisect.bisect_right(self._times, stream_time + EPS) - 1
        return self._stamps[index] if index >= 0 else None
