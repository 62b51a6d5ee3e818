"""Turn sensor_msgs Image / CompressedImage messages into RGB uint8 arrays for the model.

The six encodings cameras send most (rgb8, bgr8, rgba8, bgra8, mono8, mono16) are converted
here with a NumPy view of the message buffer, the same way on every machine: the robot and the
tests see identical pixels. Other encodings go through ROS 2's cv_bridge where a ROS
distribution provides it (Bayer, YUV, 16-bit colour, ...); without cv_bridge they are rejected
with an error that names the supported ones.

Every rejection raises :class:`ImageConversionError` whose ``kind`` groups the failure
('empty', 'size', 'too large', 'encoding', 'decode'), so the node can throttle one log line
per kind. ``max_pixels`` refuses an image before a byte of it is converted: raw images by
their declared geometry, JPEG and PNG by the size in their header (a small JPEG can decode to
hundreds of MB).
"""

import struct

import numpy as np

#: Encodings converted by NumPy: channels, dtype and how to reach RGB.
NUMPY_ENCODINGS = {
    'rgb8': (3, np.uint8),
    'bgr8': (3, np.uint8),
    'rgba8': (4, np.uint8),
    'bgra8': (4, np.uint8),
    'mono8': (1, np.uint8),
    'mono16': (1, np.uint16),
}


class ImageConversionError(ValueError):
    """A message that cannot become an RGB frame; ``kind`` says which sort of problem."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def _load_cv_bridge():
    """Return a ROS 2 CvBridge, or None where no ROS 2 cv_bridge is installed.

    The pip package also called ``cv_bridge`` is ROS 1's code rewritten in Python and misreads
    ROS 2 images with OpenCV 5; ROS 2's cv_bridge is recognised by its compiled boost module.
    """
    try:
        from cv_bridge import CvBridge
        import cv_bridge.boost.cv_bridge_boost  # noqa: F401  (present only in ROS 2's)
    except Exception:  # ImportError, or a broken binary module
        return None
    return CvBridge()


_CV_BRIDGE = _load_cv_bridge()


def stamp_ns(stamp):
    """builtin_interfaces/Time (or a bag's copy of it) as integer nanoseconds, exactly."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def _check_pixels(width, height, max_pixels, what):
    if max_pixels and width * height > max_pixels:
        raise ImageConversionError(
            'too large', f'{what} of {width}x{height} = {width * height} pixels is over '
            f'max_image_pixels {max_pixels}; frame skipped without decoding')


def image_to_rgb(msg, max_pixels=None):
    """Convert a sensor_msgs/Image to a contiguous H x W x 3 uint8 RGB array.

    Raises ImageConversionError for empty data, a step or data size that does not match the
    declared geometry, more than ``max_pixels`` pixels, or an encoding that cannot be
    converted.
    """
    height, width = int(msg.height), int(msg.width)
    data = msg.data
    if height == 0 or width == 0 or len(data) == 0:
        raise ImageConversionError(
            'empty', f'empty image ({width}x{height}, {len(data)} bytes of data)')
    _check_pixels(width, height, max_pixels, 'image')
    encoding = msg.encoding.strip().lower()
    if encoding not in NUMPY_ENCODINGS:
        return _convert_with_cv_bridge(msg, encoding)
    channels, dtype = NUMPY_ENCODINGS[encoding]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    step = int(msg.step)
    if step < row_bytes:
        raise ImageConversionError(
            'size', f'step {step} is shorter than a row of {width} {encoding} pixels '
            f'({row_bytes} bytes)')
    if len(data) != step * height:
        raise ImageConversionError(
            'size', f'data holds {len(data)} bytes, step {step} x height {height} needs '
            f'{step * height}')
    rows = _byte_view(data).reshape(height, step)[:, :row_bytes]
    if itemsize == 1:
        pixels = rows.reshape(height, width, channels)
    else:
        order = '>' if msg.is_bigendian else '<'
        wide = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order))
        # 16-bit depth/IR images: keep the top 8 bits, what a viewer would show.
        pixels = (wide.reshape(height, width, channels) >> 8).astype(np.uint8)
    return _to_rgb(pixels, encoding)


def _byte_view(data):
    """View message data (array.array, bytes or a list of ints) as uint8 without copying."""
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:  # a plain list, as a hand-built message may hold
        return np.asarray(data, dtype=np.uint8)


def _to_rgb(pixels, encoding):
    """Reorder or expand channels to RGB; NumPy views where possible, one copy at the end."""
    if encoding in ('mono8', 'mono16'):
        rgb = np.repeat(pixels, 3, axis=2)
    elif encoding.startswith('bgr'):
        rgb = pixels[:, :, 2::-1]
    else:
        rgb = pixels[:, :, :3]
    return np.ascontiguousarray(rgb)


def _convert_with_cv_bridge(msg, encoding):
    """Hand exotic encodings to ROS 2's cv_bridge, or refuse them clearly without it."""
    if _CV_BRIDGE is None:
        supported = ', '.join(NUMPY_ENCODINGS)
        raise ImageConversionError(
            'encoding', f"unsupported encoding '{msg.encoding}' (supported: {supported}; "
            'install ROS 2 cv_bridge for more)')
    try:
        rgb = _CV_BRIDGE.imgmsg_to_cv2(msg, desired_encoding='rgb8')
    except Exception as exc:  # cv_bridge raises CvBridgeError, TypeError, cv2.error, ...
        raise ImageConversionError(
            'encoding', f"cv_bridge cannot convert encoding '{encoding}': {exc}") from exc
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def compressed_size(data):
    """Return (width, height) from a PNG or JPEG header, or None for another format."""
    head = bytes(data[:24])
    if head.startswith(b'\x89PNG\r\n\x1a\n') and len(head) >= 24:
        return struct.unpack('>II', head[16:24])
    if not head.startswith(b'\xff\xd8'):
        return None
    data = _byte_view(data)
    i, n = 2, len(data)
    while i + 9 < n:   # walk the segments to the first start-of-frame
        if data[i] != 0xFF:
            return None
        marker = int(data[i + 1])
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int(data[i + 2]) << 8 | int(data[i + 3])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int(data[i + 5]) << 8 | int(data[i + 6])
            width = int(data[i + 7]) << 8 | int(data[i + 8])
            return width, height
        i += 2 + length
    return None


def compressed_to_rgb(msg, max_pixels=None):
    """Decode a sensor_msgs/CompressedImage (JPEG, PNG, ...) to an H x W x 3 RGB array.

    With ``max_pixels``, a JPEG or PNG larger than that is refused from its header alone.
    """
    if len(msg.data) == 0:
        raise ImageConversionError('empty', 'empty compressed image')
    if max_pixels:
        size = compressed_size(msg.data)
        if size is not None:
            _check_pixels(size[0], size[1], max_pixels, 'compressed image')
    import cv2  # only the compressed path needs OpenCV

    bgr = cv2.imdecode(_byte_view(msg.data), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageConversionError(
            'decode', f"cannot decode compressed image (format '{msg.format}', "
            f'{len(msg.data)} bytes)')
    return np.ascontiguousarray(bgr[:, :, ::-1])


def rgb_to_image(rgb, msg, encoding='rgb8'):
    """Fill a sensor_msgs/Image ``msg`` from an H x W x 3 RGB uint8 array; return ``msg``.

    Used by video_publisher and the tests; ``encoding`` may be 'rgb8' or 'bgr8'.
    """
    rgb = np.asarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'expected an H x W x 3 array, got shape {rgb.shape}')
    if encoding == 'bgr8':
        rgb = rgb[:, :, ::-1]
    elif encoding != 'rgb8':
        raise ValueError(f"rgb_to_image writes rgb8 or bgr8, not '{encoding}'")
    pixels = np.ascontiguousarray(rgb)
    msg.height, msg.width = pixels.shape[0], pixels.shape[1]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = pixels.shape[1] * 3
    msg.data = pixels.tobytes()
    return msg
