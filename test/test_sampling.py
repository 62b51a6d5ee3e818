"""The one frame sampler: the model rate by stream time, one rule live and recorded."""

import random

import pytest

from live_ros.streaming.sampling import FrameSampler, resample


def _used(sampler, times):
    return [t for t in times if sampler.offer(t) is not None]


def test_30hz_camera_gives_2fps_on_the_grid():
    sampler = FrameSampler(fps=2.0)
    times = [i / 30.0 for i in range(30 * 10)]  # 10 s of a 30 Hz camera
    used = _used(sampler, times)
    assert len(used) == 20
    gaps = [b - a for a, b in zip(used, used[1:])]
    assert all(abs(gap - 0.5) < 1e-6 for gap in gaps)  # no drift at 30/2 = 15 frames a step


def test_uneven_camera_does_not_drift():
    sampler = FrameSampler(fps=2.0)
    times = [i * 0.07 for i in range(int(60 / 0.07))]  # 14.3 Hz, not a multiple of 2
    used = _used(sampler, times)
    assert abs(len(used) - 120) <= 1  # 60 s at 2 fps, the grid keeps the average rate
    assert all(b - a >= 0.5 - 0.07 for a, b in zip(used, used[1:]))


def test_a_frame_fills_the_due_time_it_reached():
    sampler = FrameSampler(fps=2.0)
    assert sampler.offer(0.0) == 0.0
    assert sampler.offer(0.2) is None          # not due yet
    assert sampler.offer(0.485) == 0.5         # within the jitter tolerance (20 ms)
    assert sampler.offer(0.51) is None         # that due time is taken
    assert sampler.offer(5.03) == 5.0          # a gap: the grid goes on, no burst
    assert sampler.offer(5.2) is None
    assert sampler.offer(5.53) == 5.5


def test_fps_change_and_reset():
    sampler = FrameSampler(fps=2.0)
    sampler.set_fps(4.0)
    assert _used(sampler, [i / 20.0 for i in range(21)]) == pytest.approx(
        [0.0, 0.25, 0.5, 0.75, 1.0])
    sampler.set_fps(2.0)   # the new grid starts at the last used frame
    assert _used(sampler, [1.05, 1.25, 1.5, 1.9, 2.0]) == pytest.approx([1.5, 2.0])
    sampler.reset()
    assert sampler.offer(0.3) == 0.3
    with pytest.raises(ValueError):
        sampler.set_fps(0.0)


def test_resample_takes_the_first_frame_at_or_after_each_due_time():
    got = list(resample(enumerate_times([0.0, 0.3, 0.6, 0.9, 1.2]), 2.0))
    assert got == [(0.0, 0), (0.5, 2), (1.0, 4)]


def test_resample_fills_due_times_a_slow_source_missed():
    got = list(resample(enumerate_times([0.0, 1.0, 2.0]), 2.0))
    assert got == [(0.0, 0), (0.5, 0), (1.0, 1), (1.5, 1), (2.0, 2)]
    assert list(resample(enumerate_times([0.0, 1.0, 2.0]), 2.0, fill=False)) == [
        (0.0, 0), (1.0, 1), (2.0, 2)]
    assert len(list(resample(enumerate_times([0.0, 1.0, 2.0]), 2.0, max_frames=3))) == 3


def test_the_node_path_and_live_infer_pick_the_same_frames():
    """30 Hz stamps with +-4 ms jitter: live_node's clock + sampler vs live-infer's reader."""
    from live_ros.streaming.sampling import LiveSampler
    rng = random.Random(0)
    start = 1_700_000_000.0
    stamps = [start + i / 30.0 + rng.uniform(-0.004, 0.004) for i in range(30 * 20)]
    node = LiveSampler(fps=2.0)
    by_node = [i for i, s in enumerate(stamps) if node.offer(s, received=s + 0.01)[0] is not None]
    first = stamps[0]
    by_infer = [i for _, i in resample(((s - first, i) for i, s in enumerate(stamps)), 2.0,
                                       fill=False)]
    assert by_node == by_infer
    assert len(by_node) == 40


def enumerate_times(times):
    return [(t, i) for i, t in enumerate(times)]
