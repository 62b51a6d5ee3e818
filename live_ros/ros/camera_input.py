"""The frame path's ROS end: image message -> stream clock and sampler -> RGB -> the engine.

The decision comes first, by stamp (streaming/sampling.LiveSampler), so a frame the model
will not see costs no conversion; a frame it will see is checked for size before a byte of it
is decoded. The frame goes to the engine with its image header as tag, and the header comes
back on every Response that follows it: nothing is looked up by time. Bad stamps (zero, a
jump, going back) are counted and logged once per kind and period; the stream goes on.
"""

from __future__ import annotations

import time

from sensor_msgs.msg import CompressedImage, Image

from live_ros.data.image_conversion import (compressed_to_rgb, ImageConversionError,
                                             image_to_rgb, stamp_ns)
from live_ros.ros.qos import image_qos
from live_ros.streaming.clock import BACK, JUMP, STALE, ZERO
from live_ros.streaming.sampling import LiveSampler

#: Clock readings -> (diagnostics key, what the log says).
STAMP_FAULTS = {
    ZERO: ('zero_stamps', 'image stamped 0; timed by its arrival instead'),
    JUMP: ('stamp_jumps', 'image stamp jumped ahead of the arrival clock; stream time goes '
                          'on at the arrival rate'),
    BACK: ('stamps_back', 'image stamp went back (a restarted camera, simulation or loop); '
                          'the stream goes on from the last frame'),
}


class CameraInput:
    """Subscribe to a camera and hand the model's frames to ``engine`` (None: inactive).

    ``prefix``: 'front/' subscribes front/image (a camera of a multi-camera node).
    """

    def __init__(self, node, counts, log, fps: float, max_jump_s: float, max_pixels: int,
                 compressed: bool, reliability: str, callback_group=None, prefix: str = ''):
        self.counts = counts
        self.log = log
        self.max_pixels = max_pixels or None
        self.sampler = LiveSampler(fps, max_jump_s=max_jump_s)
        self.engine = None        # the StreamPipeline while the node is active
        self.last_used = None     # stream time of the newest frame handed to the engine
        qos = image_qos(reliability)
        if compressed:
            self.subscription = node.create_subscription(
                CompressedImage, prefix + 'image/compressed', self.on_compressed_image, qos,
                callback_group=callback_group)
        else:
            self.subscription = node.create_subscription(
                Image, prefix + 'image', self.on_image, qos, callback_group=callback_group)

    def on_image(self, msg: Image) -> None:
        """Take a raw camera frame."""
        self.offer(msg.header, lambda: image_to_rgb(msg, self.max_pixels))

    def on_compressed_image(self, msg: CompressedImage) -> None:
        """Take a JPEG/PNG frame; frames the model does not use are never decoded."""
        self.offer(msg.header, lambda: compressed_to_rgb(msg, self.max_pixels))

    def offer(self, header, convert) -> None:
        """Sample by stamp, convert what is used, submit it with its header as tag."""
        engine = self.engine
        if engine is None:
            self.counts.add('images_ignored_inactive')
            return
        self.counts.image()
        t, kind = self.sampler.offer(stamp_ns(header.stamp) * 1e-9, time.monotonic())
        if kind == STALE:
            self.counts.add('images_stale')
            self.log.warn('stale frame', 'a frame older than one already received was dropped '
                          '(stamps must increase)')
            return
        if kind in STAMP_FAULTS:
            key, text = STAMP_FAULTS[kind]
            self.counts.add(key)
            self.log.warn(kind, text)
        if t is None:
            self.counts.add('images_skipped_by_rate')
            return
        try:
            rgb = convert()
        except ImageConversionError as exc:
            self.counts.add('images_bad')
            self.log.warn(f'bad image ({exc.kind})', f'{exc}; frame skipped')
            return
        try:
            engine.submit_frame(rgb, t, tag=header)
            self.last_used = t
        except Exception as exc:  # the engine must never take the image callback down
            self.log.warn('engine error in submit_frame', self.counts.error('submit_frame', exc))

    def reset(self) -> None:
        """Start a new stream: the next frame is stream time 0."""
        self.sampler.reset()
        self.last_used = None
