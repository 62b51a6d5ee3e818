"""live-infer plays a video / image folder through the session and prints timed responses."""

import os

import cv2
import numpy as np
import pytest

from live_ros.model.config import EMBEDDED_MODEL_DIR
from live_ros.data.video import iter_frames
from live_ros.cli.infer import main, parse_ask, resolve_model_path
from live_ros.testing.tiny_models import build_tiny_live_model


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('infer')
    model, _ = build_tiny_live_model(root)
    return str(model.save_pretrained(root / 'model'))


def write_clip(path, n=12, fps=6.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (40, 24))
    assert writer.isOpened()
    for i in range(n):
        frame = np.full((24, 40, 3), (i * 20) % 250, dtype=np.uint8)
        writer.write(frame)
    writer.release()
    return str(path)


def test_resolve_model_path():
    assert resolve_model_path('some/dir') == 'some/dir'
    # The trained default ships in the package, so naming nothing loads it (not the preset).
    assert resolve_model_path(None) == EMBEDDED_MODEL_DIR
    assert os.path.isfile(os.path.join(EMBEDDED_MODEL_DIR, 'live_config.json'))


def test_parse_ask():
    assert parse_ask('12.5:What am I doing?') == (12.5, 'What am I doing?')
    assert parse_ask('3:a: b') == (3.0, 'a: b')
    for bad in ['What?', 'x:y', '-1:q', '4:']:
        with pytest.raises(Exception):
            parse_ask(bad)


def test_video_frames_are_resampled_in_stream_time(tmp_path):
    clip = write_clip(tmp_path / 'clip.avi', n=12, fps=6.0)  # 2 s of video
    got = list(iter_frames(clip, 2.0))
    assert [t for t, _ in got] == [0.0, 0.5, 1.0, 1.5]
    # Stream frame k is the last source frame at or before k / fps: source 0, 3, 6, 9.
    assert [round(f.mean() / 20) for _, f in got] == [0, 3, 6, 9]


def test_live_infer_prints_timestamped_answers(model_dir, tmp_path, capsys):
    clip = write_clip(tmp_path / 'clip.avi', n=18, fps=6.0)
    rc = main([clip, '--model', model_dir, '--ask', '1.2:What am I doing?',
               '--ask', '9:Anything else?', '--max-new-tokens', '3', '--threshold', '0'])
    assert rc == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    user = lines.index('[    1.20s] User: What am I doing?')
    assert lines[user + 1].startswith('[    1.20s] Assistant:')
    # A question after the last frame is still answered at the end.
    assert '[    9.00s] User: Anything else?' in lines
    assert '6 frames at 2 fps' in out.err


def test_live_infer_image_folder_realtime(model_dir, tmp_path, capsys):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f'{i:04d}.png'), np.full((24, 40, 3), i * 30, np.uint8))
    rc = main([str(folder), '--model', model_dir, '--fps', '8', '--realtime',
               '--ask', '0.1:Hello?', '--max-new-tokens', '2'])
    assert rc == 0
    out = capsys.readouterr()
    # Live: the question goes in at 0.10 s or later (this tiny model speaks at every frame,
    # and after the model's own words the frames have their turn first).
    asked = [line for line in out.out.splitlines() if line.endswith('User: Hello?')]
    assert len(asked) == 1 and float(asked[0][1:9]) >= 0.10, out.out
    assert 'dropped' in out.err and '4 frames at 8 fps' in out.err


def test_missing_video_is_an_error(capsys):
    assert main(['/nonexistent/video.mp4', '--model', 'x']) == 2
    assert 'no such video' in capsys.readouterr().err


def test_embedded_default_is_recognised_as_the_demo_model(tmp_path):
    from live_ros.model.config import DEMO_MODEL_NOTE, is_embedded_default
    assert is_embedded_default('default') and is_embedded_default(EMBEDDED_MODEL_DIR)
    assert is_embedded_default(EMBEDDED_MODEL_DIR + '/')
    assert not is_embedded_default(str(tmp_path))
    assert 'synthetic world' in DEMO_MODEL_NOTE and 'model:=' in DEMO_MODEL_NOTE
