"""Recorded streams: rosbag2 images in camera time, responses written back as a bag."""

from pathlib import Path
import re

import numpy as np
import pytest

from live_ros.data.bag import (
    BagError, BagImages, is_bag, read_responses, RESPONSE_DEFINITION, ResponseRecorder)
from live_ros.cli.infer import main
from live_ros.streaming.response import Response
from live_ros.testing.tiny_models import build_tiny_live_model

from bag_helpers import camera_images, frame, T0, write_bag

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_response_definition_matches_the_msg_file():
    text = (REPO_ROOT / 'msg' / 'Response.msg').read_text()
    fields = [line.strip() for line in text.splitlines()
              if line.strip() and not line.strip().startswith('#')]
    assert RESPONSE_DEFINITION.splitlines() == fields


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bag_frames_follow_the_camera_stamps(tmp_path, storage):
    images = camera_images()
    # A late, older frame (stamp before the previous one): dropped as live_node drops it.
    stale = images[6][2] - 50_000_000
    images.insert(7, ('/camera/image_raw', 'sensor_msgs/msg/Image', stale,
                      images[6][3] + 1, frame(25)))
    path = write_bag(tmp_path / 'bag', images, storage)
    assert is_bag(path)
    bag = BagImages(path)
    assert bag.topic == '/camera/image_raw' and bag.count == 21
    got = list(bag.frames(2.0))
    bag.close()
    assert bag.stale == 1
    stamps = [stamp for _, _, stamp, _, _ in images if stamp != stale]
    # Stream time k / 2 shows the first frame stamped at or after first stamp + k / 2 s (less
    # the sampler's 20 ms jitter tolerance), as live_node picks it from a live camera.
    expected = [int(np.searchsorted(stamps, stamps[0] + k * 500_000_000 - 20_000_000, 'left'))
                for k in range(4)]
    assert [f.stream_time for f in got] == [0.0, 0.5, 1.0, 1.5]
    assert [f.stamp_ns for f in got] == [stamps[i] for i in expected]
    assert all(np.array_equal(f.rgb, frame(i)) for f, i in zip(got, expected))
    assert {f.frame_id for f in got} == {'cam'}


def test_compressed_topic_zero_stamps_and_bad_frames(tmp_path):
    topic = '/camera/image_raw/compressed'
    images = [(topic, 'sensor_msgs/msg/CompressedImage', 0, T0 + i * 500_000_000, frame(i))
              for i in range(4)]
    images.append(('/camera/depth', 'sensor_msgs/msg/Image', T0, T0, dict(
        height=24, width=40, encoding='32FC1', is_bigendian=0, step=160,
        data=np.zeros(24 * 160, np.uint8))))
    path = write_bag(tmp_path / 'bag', images)
    with pytest.raises(BagError, match=r'pick one with --topic .*/camera/depth, '
                                       r'/camera/image_raw/compressed'):
        BagImages(path)
    with pytest.raises(BagError, match="no image topic '/nope'"):
        BagImages(path, '/nope')
    bag = BagImages(path, topic)
    got = list(bag.frames(2.0))   # stamps 0: the receive times stand in
    assert [f.stream_time for f in got] == [0.0, 0.5, 1.0, 1.5]
    assert all(np.array_equal(f.rgb, frame(i)) for i, f in enumerate(got))
    depth = BagImages(path, '/camera/depth')
    assert list(depth.frames(2.0)) == [] and sum(depth.bad.values()) == 1
    assert 'unsupported encoding' in next(iter(depth.bad))
    for reader in (bag, depth):
        reader.close()


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_recorder_stamps_responses_with_the_frame_they_follow(tmp_path, storage):
    out = tmp_path / 'responses'
    recorder = ResponseRecorder(str(out), storage=storage)
    frame = (T0 + 510_000_000, 'cam')   # the tag live-infer gives the frame at 0.5 s
    recorder.write(Response('a cup', 0.5, 1, query_id=0, tag=frame))
    recorder.write(Response('on the table', 0.7, 1, query_id=3, tag=frame))
    recorder.close()
    with pytest.raises(BagError, match='exists already'):
        ResponseRecorder(str(out))
    got = read_responses(str(out))
    assert [(t, m.text, m.stream_time, m.query_id, m.partial) for t, m in got] == [
        (T0 + 510_000_000, 'a cup', 0.5, 0, False),
        (T0 + 510_000_000, 'on the table', 0.7, 3, False)]
    header = got[0][1].header
    assert header.frame_id == 'cam'
    assert header.stamp.sec * 10 ** 9 + header.stamp.nanosec == T0 + 510_000_000


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('bag_infer')
    model, _ = build_tiny_live_model(root)
    return str(model.save_pretrained(root / 'model'))


def test_live_infer_plays_a_bag_and_records_the_responses(model_dir, tmp_path, capsys):
    images = camera_images() + [('/other/image', 'sensor_msgs/msg/Image', T0, T0, frame(0))]
    path = write_bag(tmp_path / 'bag', images)
    assert main([path, '--model', model_dir, '--threshold', '0']) == 2
    assert 'pick one with --topic' in capsys.readouterr().err

    out = tmp_path / 'said'
    rc = main([path, '--topic', '/camera/image_raw', '--model', model_dir, '--threshold', '1',
               '--max-new-tokens', '2', '--ask', '0.7:What is there?', '--record', str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert '4 frames at 2 fps' in err
    recorded = int(re.search(r'recorded (\d+) responses', err).group(1))
    got = read_responses(str(out))
    assert len(got) == recorded >= 4   # threshold 1: it speaks after every frame
    stamps = {stamp for topic, _, stamp, _, _ in images if topic == '/camera/image_raw'}
    for bag_time, msg in got:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        assert bag_time == stamp and stamp in stamps and msg.header.frame_id == 'cam'
    assert [m.query_id for _, m in got if m.query_id] == [1]


def test_live_infer_refuses_a_topic_for_a_video(model_dir, tmp_path, capsys):
    from live_ros.data.video import write_video
    clip = str(tmp_path / 'clip.avi')
    write_video(clip, [frame(i) for i in range(4)], 2.0)
    assert main([clip, '--topic', '/x', '--model', model_dir]) == 2
    assert '--topic is for bags' in capsys.readouterr().err
