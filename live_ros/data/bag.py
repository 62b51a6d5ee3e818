"""Recorded camera streams: rosbag2 image topics in, the model's responses out, without ROS.

A bag (a rosbag2 directory, or one .mcap / .db3 file) is read with the pure-Python rosbags
library, so live-infer replays a robot's recording on any machine. Frames keep the camera's
timing: stream time is the header stamp minus the first frame's stamp (the bag's receive time
when a camera leaves stamps at zero), resampled like a video (the last frame at or before each
k / fps), as live_node samples a live camera by stamp. Responses are written as
live_ros/msg/Response stamped with the image after which the model spoke, so a player lines
them up with the recording.
"""

import collections
import os
from pathlib import Path

from live_ros.data.image_conversion import (compressed_to_rgb, ImageConversionError,
                                             image_to_rgb, stamp_ns)
from live_ros.streaming.sampling import resample

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
RESPONSE = 'live_ros/msg/Response'

#: msg/Response.msg without its comments (the pip install has no msg/ folder);
#: test_bag.py checks that the two agree.
RESPONSE_DEFINITION = """\
std_msgs/Header header
string text
float64 stream_time
uint32 query_id
bool partial
string cut
"""

STORAGES = ('mcap', 'sqlite3')


class BagError(ValueError):
    """A path that is no readable bag, or a topic it does not hold."""


def is_bag(path):
    """Say whether ``path`` looks like a rosbag2 recording (directory or storage file)."""
    path = Path(path)
    if path.is_dir():
        return (path / 'metadata.yaml').is_file()
    return path.is_file() and path.suffix in ('.mcap', '.db3')


def typestore():
    """Message types of ROS 2 Kilted plus live_ros/msg/Response."""
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores

    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(RESPONSE_DEFINITION, RESPONSE))
    return store


Frame = collections.namedtuple('Frame', 'stream_time rgb stamp_ns frame_id')


class BagImages:
    """The images of one topic of a bag, in the order the camera delivered them."""

    def __init__(self, path, topic=None):
        from rosbags.highlevel import AnyReader

        if not is_bag(path):
            raise BagError(f'{path} is not a rosbag2 recording (a folder with metadata.yaml, '
                           'or a .mcap / .db3 file)')
        self.path = str(path)
        self.reader = AnyReader([Path(path)], default_typestore=typestore())
        self.reader.open()
        images = sorted({c.topic for c in self.reader.connections
                         if c.msgtype in (IMAGE, COMPRESSED_IMAGE)})
        if topic is None and len(images) == 1:
            topic = images[0]
        if topic not in images:
            self.close()
            offered = ', '.join(images) or 'none'
            want = 'pick one with --topic' if topic is None else f'no image topic {topic!r}'
            raise BagError(f'{path}: {want} (image topics: {offered})')
        self.topic = topic
        self.connections = [c for c in self.reader.connections if c.topic == topic]
        self.count = sum(c.msgcount for c in self.connections)
        self.bad = collections.Counter()   # images that could not be converted, by kind
        self.stale = 0                     # stamps that went backwards, dropped

    @property
    def native_fps(self):
        """Mean image rate of the recording, or None for a single image."""
        span = self.reader.duration * 1e-9
        return (self.count - 1) / span if self.count > 1 and span > 0 else None

    def messages(self):
        """Yield (stamp_ns, msgtype, message) by receive order, stamps never going back."""
        newest = None
        for connection, received_ns, raw in self.reader.messages(self.connections):
            msg = self.reader.deserialize(raw, connection.msgtype)
            stamp = stamp_ns(msg.header.stamp) or received_ns
            if newest is not None and stamp < newest:
                self.stale += 1   # as live_node: an older frame than one already seen
                continue
            newest = stamp
            yield stamp, connection.msgtype, msg

    def frames(self, fps, start=0.0, fill=False):
        """Yield Frame(stream_time, rgb, stamp_ns, frame_id) at ``fps`` in camera time.

        Frames are picked as live_node picks them (streaming/sampling.py); ``start``: stream
        time 0 is ``start`` s after the first image; ``fill``: due times no image reached
        repeat the previous one (training and evaluation count one frame per due time).
        Only the frames the model sees are converted; one that cannot be (an unsupported
        encoding, corrupt data) is counted in ``bad`` and the stream goes on without it.
        """
        first = None

        def timed():
            nonlocal first
            for stamp, msgtype, msg in self.messages():
                first = stamp if first is None else first
                t = (stamp - first) * 1e-9 - start
                if t >= -1e-9:
                    yield t, (stamp, msgtype, msg)

        for t, (stamp, msgtype, msg) in resample(timed(), fps, fill=fill):
            try:
                rgb = image_to_rgb(msg) if msgtype == IMAGE else compressed_to_rgb(msg)
            except ImageConversionError as exc:
                self.bad[f'{exc.kind}: {exc}'] += 1
                continue
            yield Frame(t, rgb, stamp, msg.header.frame_id)

    def close(self):
        """Close the bag's files."""
        self.reader.close()


class ResponseRecorder:
    """Writes responses to a new bag as live_ros/msg/Response, on the images' stamps."""

    def __init__(self, path, topic='/response', storage='mcap'):
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f'storage must be one of {STORAGES}, not {storage!r}')
        if os.path.exists(path):
            raise BagError(f'{path} exists already: the recorder writes a new bag')
        self.path = str(path)
        self.store = typestore()
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=9, storage_plugin=plugin)
        self.writer.open()
        self.connection = self.writer.add_connection(topic, RESPONSE, typestore=self.store)
        self.count = 0

    def write(self, response):
        """Record one finished response (live_ros.streaming.session.Response).

        Its stamp and frame_id are those of the image it follows: the frame's tag, a
        (stamp_ns, frame_id) pair that live-infer submits with each frame.
        """
        types = self.store.types
        stamp, frame_id = response.tag or (0, '')
        header = types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](
                sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000),
            frame_id=frame_id)
        msg = types[RESPONSE](header=header, text=response.text,
                              stream_time=float(response.stream_time),
                              query_id=int(response.query_id), partial=False,
                              cut=response.cut)
        self.writer.write(self.connection, stamp, self.store.serialize_cdr(msg, RESPONSE))
        self.count += 1

    def close(self):
        """Finish the bag (metadata.yaml); it is readable only after this."""
        self.writer.close()


def read_responses(path):
    """Return the live_ros/msg/Response messages of a bag as (bag time ns, message)."""
    from rosbags.highlevel import AnyReader

    with AnyReader([Path(path)], default_typestore=typestore()) as reader:
        connections = [c for c in reader.connections if c.msgtype == RESPONSE]
        return [(t, reader.deserialize(raw, c.msgtype))
                for c, t, raw in reader.messages(connections)]
