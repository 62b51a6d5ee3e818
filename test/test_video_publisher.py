"""video_publisher over DDS: frames, stamps, frame_id, loop, count, synthetic world, errors."""

import time

import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import start_executable
from sensor_msgs.msg import CompressedImage, Image

from live_ros.data.image_conversion import compressed_to_rgb, image_to_rgb
from live_ros.data.synthetic import SyntheticWorld
from node_helpers import RosClient

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def client(ros_install):
    client = RosClient('video_publisher_test')
    yield client
    client.close()


@pytest.fixture
def video_file(tmp_path):
    """Write a four-frame 64 x 48 video: red, green, blue, white (MJPG: colours are close)."""
    path = str(tmp_path / 'colours.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 25.0, (64, 48))
    assert writer.isOpened()
    for rgb in COLOURS:
        writer.write(np.full((48, 64, 3), rgb[::-1], np.uint8))
    writer.release()
    return path


def _stamp_ns(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _publisher(*params):
    args = ['--ros-args', '-p', 'reliability:=reliable', '-p', 'wait_for_subscribers:=1']
    for param in params:
        args += ['-p', param]
    return start_executable('video_publisher', args)


def test_file_loops_stamped_when_published_with_frame_id(client, video_file):
    images = client.subscribe(Image, 'image', RELIABLE)
    compressed = client.subscribe(CompressedImage, 'image/compressed', RELIABLE)
    before = client.node.get_clock().now().nanoseconds
    with _publisher(f'source:={video_file}', 'fps:=20.0', 'loop:=true', 'count:=6',
                    'frame_id:=test_camera', 'compressed:=true') as publisher:
        client.spin_until(lambda: len(images) >= 6 and len(compressed) >= 6,
                          what='6 images and 6 compressed images')
        assert publisher.wait() == 0, publisher.output()
    assert 'count reached' in publisher.output()
    assert len(images) == 6
    stamps = [_stamp_ns(msg) for msg in images]
    # stamped when published: increasing, within the run, never ahead of the clock
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert before < stamps[0] and stamps[-1] < client.node.get_clock().now().nanoseconds
    assert [_stamp_ns(msg) for msg in compressed] == stamps
    for index, msg in enumerate(images):
        assert msg.header.frame_id == 'test_camera'
        assert (msg.encoding, msg.width, msg.height) == ('rgb8', 64, 48)
        expected = np.array(COLOURS[index % 4], np.int16)  # looped: frames 0 1 2 3 0 1
        centre = image_to_rgb(msg)[24, 32].astype(np.int16)
        assert np.abs(centre - expected).max() < 40, (index, centre)
        decoded = compressed_to_rgb(compressed[index])[24, 32].astype(np.int16)
        assert np.abs(decoded - expected).max() < 40, (index, decoded)


def test_file_without_loop_ends_at_its_last_frame(client, video_file):
    images = client.subscribe(Image, 'image', RELIABLE)
    with _publisher(f'source:={video_file}', 'fps:=30.0') as publisher:
        assert publisher.wait() == 0, publisher.output()
    client.spin_until(lambda: len(images) >= 4, what='4 images')
    client.spin_for(0.3)
    assert len(images) == 4
    assert 'end of source after 4 frames' in publisher.output()


def test_synthetic_world_frames_are_exact(client):
    images = client.subscribe(Image, 'image', RELIABLE)
    with _publisher('source:=synthetic:3', 'max_size:=64', 'fps:=10.0', 'count:=4') as pub:
        client.spin_until(lambda: len(images) >= 4, what='4 synthetic frames')
        assert pub.wait() == 0, pub.output()
    world = SyntheticWorld(3, size=64)
    for index, msg in enumerate(images):
        np.testing.assert_array_equal(image_to_rgb(msg), world.render(index / 10.0))


def test_bag_topic_plays_in_the_camera_timing(client, tmp_path):
    from test_bag import camera_images, frame, write_bag

    images = camera_images(n=20)  # 10 Hz for 2 s, jittered stamps
    path = write_bag(tmp_path / 'bag', images + [
        ('/other', 'sensor_msgs/msg/Image', images[0][2], images[0][3], frame(0))])
    received = client.subscribe(Image, 'image', RELIABLE)
    with _publisher(f'source:=bag:{path}', 'bag_topic:=/camera/image_raw',
                    'fps:=5.0') as pub:
        client.spin_until(lambda: len(received) >= 10, what='10 frames from the bag')
        assert pub.wait() == 0, pub.output()
    assert 'end of source after 10 frames' in pub.output()
    # Frame n shows the first camera image stamped at or after n / 5 s after the first (less
    # the sampler's 20 ms jitter tolerance): the frames live_node would pick.
    stamps = [stamp for _, _, stamp, _, _ in images]
    for n, msg in enumerate(received):
        index = int(np.searchsorted(stamps, stamps[0] + n * 200_000_000 - 20_000_000, 'left'))
        np.testing.assert_array_equal(image_to_rgb(msg), frame(index))


@pytest.mark.parametrize('source, reason', [
    ('/nonexistent/clip.mp4', 'cannot open video file'),
    ('camera:97', 'cannot open camera device'),
    ('synthetic:x', 'synthetic:<seed> (an integer)'),
    ('bag:/nonexistent/bag', 'is not a rosbag2 recording'),
    ('synthetic:1 -p reliability:=sometimes', 'reliability must be one of'),
    ('synthetic:1 -p fps:=-2.0', 'out of range'),
])
def test_bad_source_exits_non_zero_with_reason(ros_install, source, reason):
    source, *more = source.split(' ')
    args = ['--ros-args', '-p', f'source:={source}', *more]
    with start_executable('video_publisher', args) as pub:
        assert pub.wait() == 1
    assert reason in pub.output()


def test_terminal_ctrl_c_twice_is_clean_and_help_prints_usage(ros_install):
    """Ctrl-C in a terminal reaches the whole process group, launch forwards it once more."""
    import signal
    with start_executable('video_publisher', ['--ros-args', '-p', 'source:=synthetic:1'],
                          ready=r'publishing') as pub:
        pub.signal_group(signal.SIGINT)
        pub.signal_group(signal.SIGINT)
        # ... and more while it ends: one landing in the interpreter's teardown killed it
        for _ in range(500):
            if pub.proc.poll() is not None:
                break
            pub.signal_group(signal.SIGINT)
            time.sleep(0.01)
        assert pub.wait() == 0, pub.output()
    assert 'Traceback' not in pub.output()
    with start_executable('video_publisher', ['--help']) as helped:
        assert helped.wait() == 0, helped.output()
    assert 'Sources' in helped.output() and 'Traceback' not in helped.output()
