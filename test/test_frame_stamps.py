"""A response gets the stamp of the last frame at or before its stream time."""

from live_ros.streaming.frame_stamps import FrameStamps, stamp_ns


class Time:
    def __init__(self, sec, nanosec):
        self.sec, self.nanosec = sec, nanosec


def test_last_frame_at_or_before_and_bounded_history():
    stamps = FrameStamps(maxlen=3)
    assert stamps.at(0.0) is None
    for k in range(5):
        stamps.add(k * 0.5, f'frame {k}')
    assert stamps.at(1.0) == 'frame 2'          # exactly a frame's time
    assert stamps.at(1.5 - 1e-7) == 'frame 3'   # float noise of stamps is the same frame
    assert stamps.at(1.9) == 'frame 3' and stamps.at(99.0) == 'frame 4'
    assert stamps.at(0.7) is None               # frames 0 and 1 are forgotten (maxlen 3)


def test_stamp_ns_is_exact():
    assert stamp_ns(Time(1_700_000_000, 123_456_789)) == 1_700_000_000_123_456_789
