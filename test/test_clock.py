"""StreamClock: stream time from camera stamps, and what bad stamps cannot do to it."""

from live_ros.streaming.clock import BACK, FIRST, JUMP, OK, STALE, StreamClock, ZERO

T0 = 1_700_000_000.0


def run(clock, stamps, period=1 / 30):
    """Read frames that arrive every ``period`` s with the given stamps; return the readings."""
    return [clock.read(s, received=100.0 + i * period) for i, s in enumerate(stamps)]


def test_good_stamps_are_used_as_they_are():
    readings = run(StreamClock(), [T0 + i / 30 for i in range(90)])
    assert readings[0] == (0.0, FIRST)
    assert all(kind == OK for _, kind in readings[1:])
    assert abs(readings[-1][0] - 89 / 30) < 1e-6


def test_a_stamp_an_hour_ahead_moves_stream_time_by_under_a_second():
    stamps = [T0 + i / 30 for i in range(60)]
    stamps[30] += 3600.0
    clock = StreamClock()
    readings = run(clock, stamps)
    assert readings[30][1] == JUMP and readings[31][1] == BACK
    times = [t for t, _ in readings]
    assert all(b > a for a, b in zip(times, times[1:]))   # never back, never stuck
    assert abs(times[-1] - 59 / 30) < 1.0
    assert clock.counts[JUMP] == 1 and clock.counts[BACK] == 1


def test_zero_stamps_are_timed_by_arrival():
    stamps = ([T0 + i / 30 for i in range(30)] + [0.0] * 30
              + [T0 + (60 + i) / 30 for i in range(30)])
    clock = StreamClock()
    times = [t for t, _ in run(clock, stamps)]
    assert clock.counts[ZERO] == 30
    assert all(b >= a for a, b in zip(times, times[1:]))
    assert abs(times[-1] - 89 / 30) < 0.1
    unstamped = StreamClock()   # a driver that never stamps: arrival time throughout
    times = [t for t, _ in run(unstamped, [0.0] * 31)]
    assert abs(times[-1] - 1.0) < 1e-6 and unstamped.counts[ZERO] == 31


def test_slightly_older_frames_are_stale_and_a_restart_continues_the_stream():
    clock = StreamClock(restart_after=1.0)
    assert clock.read(T0, 0.0) == (0.0, FIRST)
    assert clock.read(T0 + 0.5, 0.5) == (0.5, OK)
    assert clock.read(T0 + 0.4, 0.6) == (None, STALE)
    t, kind = clock.read(T0 - 50.0, 1.0)   # a looped video: its clock starts again
    assert kind == BACK and abs(t - 1.0) < 1e-6
    assert abs(clock.read(T0 - 49.5, 1.5)[0] - 1.5) < 1e-6   # camera timing again


def test_a_real_pause_is_no_jump():
    clock = StreamClock(max_jump_s=5.0)
    clock.read(T0, 0.0)
    assert clock.read(T0 + 60.0, 60.0) == (60.0, OK)   # the camera really was away


def test_offline_stamps_are_trusted_but_for_going_back():
    clock = StreamClock()
    assert clock.read(T0) == (0.0, FIRST)
    assert clock.read(T0 + 3600.0) == (3600.0, OK)
