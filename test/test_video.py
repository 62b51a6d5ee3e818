"""OpenCV video and frame-folder reading, resampled by timestamp to the stream rate."""

import cv2
import numpy as np
import pytest

from live_ros.data.format import Dialogue
from live_ros.data.frames import dialogue_frames
from live_ros.data.video import iter_folder, iter_frames, iter_video, video_info, write_video


def _frames(n, size=64):
    """Frame i is a flat grey image of level 4 * i, so the decoded level says which it is."""
    return [np.full((size, size, 3), 4 * i, np.uint8) for i in range(n)]


def read_video(path, fps, max_frames=None, start=0.0):
    return [rgb for _, rgb in iter_video(path, fps, max_frames, start)]


def _index(frame):
    return int(round(float(frame.mean()) / 4))


@pytest.mark.parametrize('ext', ['.avi', '.mp4'])
def test_video_file_resampled_to_2fps(tmp_path, ext):
    path = str(tmp_path / ('clip' + ext))
    write_video(path, _frames(50), fps=10)  # 5 s at 10 fps
    fps, count, duration = video_info(path)
    assert fps == pytest.approx(10) and count == 50 and duration == pytest.approx(5.0)
    frames = read_video(path, 2.0)
    assert len(frames) == 10  # 0.0, 0.5, ..., 4.5 s (the last source frame is at 4.9 s)
    # OpenCV's mp4v writer delays content by one frame (its first frame is repeated)
    tol = 1 if ext == '.mp4' else 0
    assert all(abs(_index(f) - k) <= tol for f, k in zip(frames, range(0, 50, 5)))
    assert frames[0].shape == (64, 64, 3) and frames[0].dtype == np.uint8
    assert len(read_video(path, 2.0, max_frames=3)) == 3
    late = read_video(path, 2.0, start=1.0)
    assert all(abs(_index(f) - k) <= tol for f, k in zip(late, [10, 15, 20]))


def test_slow_video_repeats_the_last_frame(tmp_path):
    path = str(tmp_path / 'slow.avi')
    write_video(path, _frames(4), fps=1)  # frames at 0, 1, 2, 3 s
    assert [_index(f) for f in read_video(path, 2.0)] == [0, 0, 1, 1, 2, 2, 3]


def test_frame_folder_and_colour_order(tmp_path):
    for i, f in enumerate(_frames(12)):
        f = f.copy()
        f[0, 0] = (255, 0, 0)  # red pixel, in RGB
        cv2.imwrite(str(tmp_path / f'{i:05d}.png'), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    frames = [rgb for _, rgb in iter_folder(str(tmp_path), 2.0, source_fps=4.0)]
    assert [_index(f[1:]) for f in frames] == [0, 2, 4, 6, 8, 10]
    assert tuple(frames[0][0, 0]) == (255, 0, 0)
    assert len(list(iter_frames(str(tmp_path), 2.0))) == 12


def test_dialogue_video_source(tmp_path):
    path = str(tmp_path / 'clip.avi')
    write_video(path, _frames(40), fps=8)
    d = Dialogue(video=path, fps=2.0, duration=3.0)
    assert [_index(f) for f in dialogue_frames(d)] == [0, 4, 8, 12, 16, 20, 24]


def test_one_reader_for_training_inference_and_the_publisher(tmp_path):
    """decode_video's times are the clip's; every reader resamples from them the same way."""
    from live_ros.data.video import decode_video
    path = str(tmp_path / 'known.avi')
    write_video(path, _frames(12), fps=6)   # frame i at i / 6 s
    decoded = list(decode_video(path))
    assert [round(t * 6, 6) for t, _ in decoded] == list(range(12))
    assert [_index(bgr) for _, bgr in decoded] == list(range(12))
    streamed = list(iter_frames(path, 2.0))   # live-infer
    assert [t for t, _ in streamed] == [0.0, 0.5, 1.0, 1.5]
    assert [_index(f) for _, f in streamed] == [0, 3, 6, 9]
    assert [_index(f) for f in read_video(path, 2.0)] == [0, 3, 6, 9]   # training
    d = Dialogue(video=path, fps=2.0, duration=1.5)
    assert [_index(f) for f in dialogue_frames(d)] == [0, 3, 6, 9]
    assert [_index(bgr) for _, bgr in decode_video(path, start=1.0)] == list(range(6, 12))
