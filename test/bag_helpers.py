"""Bags written by the tests: a jittery camera of numbered frames, raw or compressed."""

import cv2
import numpy as np

from live_ros.data.bag import typestore

T0 = 1_700_000_000_123_000_000  # camera clock of the recording, ns


def frame(i):
    """Draw a 24 x 40 frame that says its index (red level) and differs in every channel."""
    rgb = np.zeros((24, 40, 3), np.uint8)
    rgb[..., 0] = i * 10
    rgb[..., 2] = 255 - i * 10
    return rgb


def write_bag(path, images, storage='mcap'):
    """Write a bag: images = [(topic, msgtype, stamp_ns, receive_ns, rgb or msg fields)]."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    types = store.types
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, msgtype, stamp, received, pixels in images:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            header = types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](
                    sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000),
                frame_id='cam')
            if msgtype == 'sensor_msgs/msg/Image':
                fields = pixels if isinstance(pixels, dict) else dict(
                    height=24, width=40, encoding='rgb8', is_bigendian=0, step=120,
                    data=np.ascontiguousarray(pixels).reshape(-1))
                msg = types[msgtype](header=header, **fields)
            else:
                ok, png = cv2.imencode('.png', np.ascontiguousarray(pixels[:, :, ::-1]))
                msg = types[msgtype](header=header, format='png', data=png.reshape(-1))
            writer.write(connections[topic], received, store.serialize_cdr(msg, msgtype))
    return str(path)


def camera_images(n=20, rate=10.0, topic='/camera/image_raw'):
    """Make a 10 Hz camera with stamp jitter, received 30 ms after each stamp."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        stamp = T0 + round((i / rate + rng.uniform(-0.01, 0.01)) * 1e9)
        out.append((topic, 'sensor_msgs/msg/Image', stamp, stamp + 30_000_000, frame(i)))
    return out
