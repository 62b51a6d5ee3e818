"""Frame sampler: the model rate is kept by header stamp, newest frame wins, time may restart."""

import pytest

from live_ros.ros.frame_sampler import FrameSampler, RESTART, SKIP, STALE, USE


def _used(sampler, stamps):
    return [t for t in stamps if sampler.offer(t) in (USE, RESTART)]


def test_30hz_camera_gives_2fps_on_the_stamp_grid():
    sampler = FrameSampler(fps=2.0)
    stamps = [1000.0 + i / 30.0 for i in range(30 * 10)]  # 10 s of a 30 Hz camera
    used = _used(sampler, stamps)
    assert len(used) == 20
    gaps = [b - a for a, b in zip(used, used[1:])]
    assert all(abs(gap - 0.5) < 1e-6 for gap in gaps)  # no drift at 30/2 = 15 frames a step


def test_uneven_camera_does_not_drift():
    sampler = FrameSampler(fps=2.0)
    stamps = [i * 0.07 for i in range(int(60 / 0.07))]  # 14.3 Hz, not a multiple of 2
    used = _used(sampler, stamps)
    assert abs(len(used) - 120) <= 1  # 60 s at 2 fps, the grid keeps the average rate
    assert all(b - a >= 0.5 - 0.07 for a, b in zip(used, used[1:]))


def test_stale_and_duplicate_frames_are_dropped():
    sampler = FrameSampler(fps=2.0)
    assert sampler.offer(10.0) == USE
    assert sampler.offer(10.0) == STALE
    assert sampler.offer(9.8) == STALE
    assert sampler.offer(10.2) == SKIP
    assert sampler.offer(10.5) == USE


def test_time_going_back_restarts_the_grid():
    sampler = FrameSampler(fps=2.0, restart_after=1.0)
    _used(sampler, [50.0, 50.5, 51.0])
    assert sampler.offer(3.0) == RESTART  # a looped video or a restarted simulation
    assert sampler.offer(3.2) == SKIP
    assert sampler.offer(3.5) == USE


def test_gap_reanchors_instead_of_bursting():
    sampler = FrameSampler(fps=2.0)
    assert _used(sampler, [0.0, 0.5, 5.03, 5.1, 5.2, 5.53]) == [0.0, 0.5, 5.03, 5.53]


def test_fps_change_and_reset():
    sampler = FrameSampler(fps=2.0)
    sampler.set_fps(4.0)
    assert _used(sampler, [i / 20.0 for i in range(21)]) == pytest.approx(
        [0.0, 0.25, 0.5, 0.75, 1.0])
    sampler.reset()
    assert sampler.offer(0.3) == USE
    with pytest.raises(ValueError):
        sampler.set_fps(0.0)
