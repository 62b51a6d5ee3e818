"""video_publisher: play a video file, a camera or the synthetic world as sensor_msgs/Image.

    ros2 run live_ros video_publisher --ros-args -p source:=clip.mp4 -p fps:=10.0 -p loop:=true
    ros2 run live_ros video_publisher camera:0
    ros2 run live_ros video_publisher synthetic:7
    ros2 run live_ros video_publisher my_bag --ros-args -p bag_topic:=/camera/image_raw

Sources (parameter ``source``, or the first command-line argument):
  * a video file OpenCV can read (``fps`` 0 = the file's own rate);
  * ``camera:<index>`` or a bare index: a camera device, stamped when each frame is read;
  * ``synthetic:<seed>``: the procedural world of live_ros.data.synthetic (exact ground truth);
  * a rosbag2 recording (folder, .mcap or .db3; or ``bag:<path>``): the image topic
    ``bag_topic`` (default: its only one), in the camera's timing by header stamp.

Every frame is stamped when it is published, as a camera driver stamps a capture: when this
process cannot keep up, the stamps say so (they do not run ahead of the clock on a grid).
``header.frame_id`` is the ``frame_id`` parameter. ``video_publisher --help`` prints this.
"""

import signal
import sys
import threading

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CompressedImage, Image

from live_ros.data.image_conversion import rgb_to_image
from live_ros.ros.parameters import VIDEO_PUBLISHER_PARAMETERS

DEFAULT_CAMERA_FPS = 30.0
DEFAULT_FPS = 10.0


class SourceError(RuntimeError):
    """The requested source cannot be opened."""


class CameraSource:
    """Frames of a camera device, as RGB arrays."""

    is_camera = True

    def __init__(self, index):
        import cv2

        self._capture = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            raise SourceError(f'cannot open camera device {index!r}')
        rate = self._capture.get(cv2.CAP_PROP_FPS)
        self.native_fps = rate if rate and 0.0 < rate < 1000.0 else None

    def read(self):
        """Return the next RGB frame, or None when the device stops."""
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            return None
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def rewind(self):
        """Cameras have no end."""

    def close(self):
        """Release the device."""
        self._capture.release()


class FileSource:
    """Frames of a video file in decoding order, through the package's one video reader.

    Each decoded frame is published once, at the publishing rate (fps 0 = the file's own rate,
    so the stamps follow the file's timing as data/video.decode_video gives it).
    """

    is_camera = False

    def __init__(self, path):
        from live_ros.data.video import decode_video, video_info

        self._decode = decode_video
        self._path = path
        try:
            rate = video_info(path)[0]
        except FileNotFoundError as exc:
            raise SourceError(f'cannot open video file {path!r}') from exc
        self.native_fps = rate if rate and 0.0 < rate < 1000.0 else None
        self._frames = decode_video(path)

    def read(self):
        """Return the next RGB frame, or None at the end of the video."""
        item = next(self._frames, None)
        return None if item is None else np.ascontiguousarray(item[1][:, :, ::-1])

    def rewind(self):
        """Start the file again (loop)."""
        self._frames.close()
        self._frames = self._decode(self._path)

    def close(self):
        """Release the file."""
        self._frames.close()


class SyntheticSource:
    """Frames of the seeded synthetic world (live_ros.data.synthetic), rendered on demand.

    The world is endless; frame n shows the world at n / fps seconds, so its events keep their
    ground-truth times whatever the publishing rate.
    """

    is_camera = False
    native_fps = None

    def __init__(self, seed, size):
        from live_ros.data.synthetic import SyntheticWorld

        self.world = SyntheticWorld(seed, size=size or 224)
        self.fps = DEFAULT_FPS
        self._index = 0

    def read(self):
        """Render the next frame."""
        rgb = self.world.render(self._index / self.fps)
        self._index += 1
        return rgb

    def rewind(self):
        """Start the world again from time 0 (the seed fixes it)."""
        self._index = 0

    def close(self):
        """Nothing to release."""


class BagSource:
    """Frames of an image topic of a rosbag2 recording, in the camera's own timing.

    Frame n is what the camera showed n / fps seconds after the bag's first image (by header
    stamp, live_ros.data.bag), so the grid stamps of this publisher keep the recording's
    timing whatever the rate; fps 0 plays at the recording's mean rate.
    """

    is_camera = False

    def __init__(self, path, topic=None):
        from live_ros.data.bag import BagError, BagImages

        try:
            self.bag = BagImages(path, topic or None)
        except (BagError, OSError) as exc:
            raise SourceError(str(exc)) from exc
        self.native_fps = self.bag.native_fps
        self.fps = DEFAULT_FPS
        self._frames = None

    def read(self):
        """Return the next RGB frame at the publishing rate, or None at the end."""
        if self._frames is None:
            self._frames = self.bag.frames(self.fps, fill=True)
        frame = next(self._frames, None)
        return None if frame is None else frame.rgb

    def rewind(self):
        """Play the recording again from its first image."""
        self._frames = None

    def close(self):
        """Close the bag."""
        self.bag.close()


def open_source(spec, size=0, bag_topic=''):
    """Open a source spec (live_ros.data.sources: the one grammar of every tool)."""
    from live_ros.data.sources import parse_source, SourceError as SpecError
    try:
        source = parse_source(spec)
    except SpecError as exc:
        raise SourceError(str(exc)) from exc
    if source.kind == 'synthetic':
        return SyntheticSource(source.target, size)
    if source.kind == 'camera':
        return CameraSource(source.target)
    if source.kind == 'bag':
        return BagSource(source.target, bag_topic)
    if source.kind == 'folder':
        raise SourceError(f'{spec!r} is a folder: video_publisher plays a video file, a '
                          'camera, a bag or the synthetic world')
    return FileSource(source.target)


class VideoPublisher(Node):
    """Publish a source's frames on ``image`` (and ``image/compressed`` when asked)."""

    def __init__(self, source_override=None):
        super().__init__('video_publisher')
        for param in VIDEO_PUBLISHER_PARAMETERS:
            self.declare_parameter(param.name, param.default, param.descriptor())
            reason = param.check(self.get_parameter(param.name).value)
            if reason:
                raise SourceError(reason)

        source = source_override or self.get_parameter('source').value
        self.max_size = self.get_parameter('max_size').value
        self.source = open_source(source, self.max_size, self.get_parameter('bag_topic').value)
        fps = self.get_parameter('fps').value
        if fps <= 0.0:
            fps = self.source.native_fps or (
                DEFAULT_CAMERA_FPS if self.source.is_camera else DEFAULT_FPS)
        self.fps = fps
        if isinstance(self.source, (SyntheticSource, BagSource)):
            self.source.fps = fps
        self.frames_published = 0
        self.done = False

        self.reliable = self.get_parameter('reliability').value == 'reliable'
        if self.reliable:
            qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        else:
            qos = qos_profile_sensor_data
        self.publisher = self.create_publisher(Image, 'image', qos)
        self.compressed_publisher = None
        if self.get_parameter('compressed').value:
            self.compressed_publisher = self.create_publisher(
                CompressedImage, 'image/compressed', qos)
        self.timer = self.create_timer(1.0 / fps, self.on_timer)
        self.get_logger().info(f'publishing {source!r} on {self.publisher.topic_name} '
                               f'at {fps:g} Hz')

    def on_timer(self):
        """Publish one frame per tick, stamped now."""
        if self.done:
            return
        if self.frames_published == 0:
            wanted = self.get_parameter('wait_for_subscribers').value
            if self.publisher.get_subscription_count() < wanted:
                return
        limit = self.get_parameter('count').value
        if limit and self.frames_published >= limit:
            self._finish(f'published {self.frames_published} frames (count reached)')
            return
        rgb = self.source.read()
        if rgb is None and self.get_parameter('loop').value and self.frames_published:
            self.source.rewind()
            rgb = self.source.read()
        if rgb is None:
            self._finish(f'end of source after {self.frames_published} frames')
            return
        rgb = self._fit(rgb)
        msg = rgb_to_image(rgb, Image(), encoding='rgb8')
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.get_parameter('frame_id').value
        self.publisher.publish(msg)
        if self.compressed_publisher is not None:
            self.compressed_publisher.publish(self._compress(rgb, msg.header))
        self.frames_published += 1

    def _fit(self, rgb):
        """Scale down to max_size on the longest side, keeping the aspect ratio."""
        longest = max(rgb.shape[:2])
        if not self.max_size or longest <= self.max_size:
            return rgb
        import cv2

        scale = self.max_size / longest
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)

    @staticmethod
    def _compress(rgb, header):
        import cv2

        ok, jpeg = cv2.imencode('.jpg', np.ascontiguousarray(rgb[:, :, ::-1]))
        msg = CompressedImage(header=header, format='rgb8; jpeg compressed bgr8')
        msg.data = jpeg.tobytes() if ok else b''
        return msg

    def _finish(self, why):
        self.done = True
        self.timer.cancel()
        # Reliable subscribers get every frame before the process exits.
        for publisher in (self.publisher, self.compressed_publisher):
            if publisher is not None and self.reliable:
                publisher.wait_for_all_acked(Duration(seconds=2.0))
        self.get_logger().info(why)

    def destroy_node(self):
        """Release the camera or file as the node goes away."""
        self.source.close()
        return super().destroy_node()


def main(args=None):
    """Entry point of ``ros2 run live_ros video_publisher [source]``.

    Ctrl-C and SIGTERM end the loop cleanly, however many arrive (a terminal's Ctrl-C reaches
    the whole process group, and launch forwards it once more): no traceback, exit 0.
    """
    argv = list(args if args is not None else sys.argv)
    extra = remove_ros_args(argv)[1:]
    if '-h' in extra or '--help' in extra:
        print(__doc__)
        return 0
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda signum, frame: stop.set())
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    code = 0
    try:
        node = VideoPublisher(source_override=extra[0] if extra else None)
        while rclpy.ok() and not node.done and not stop.is_set():
            rclpy.spin_once(node, timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    except Exception as exc:  # a bad source or parameter: say why, exit 1
        name = '' if isinstance(exc, SourceError) else f'{type(exc).__name__}: '
        print(f'video_publisher: {name}{exc}', file=sys.stderr)
        code = 1
    finally:
        # From here on the process is ending: one more Ctrl-C (launch forwards the
        # terminal's once more) must not kill the interpreter's teardown with a signal.
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
