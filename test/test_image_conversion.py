"""Image conversion: every supported encoding gives the right RGB pixels, bad input is named.

Real sensor_msgs messages, serialized and deserialized through rclpy as they would arrive
over DDS, so the data field has the type a subscriber really sees.
"""

import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image

from live_ros.data.image_conversion import (
    compressed_to_rgb, ImageConversionError, image_to_rgb, NUMPY_ENCODINGS, rgb_to_image)


def _over_the_wire(msg):
    return deserialize_message(serialize_message(msg), type(msg))


def _image(array, encoding, pad=0, bigendian=False):
    """Build an Image with ``pad`` bytes of row padding, as some drivers send."""
    height, width = array.shape[:2]
    rows = array.reshape(height, -1)
    if array.dtype == np.uint16:
        rows = array.astype('>u2' if bigendian else '<u2').reshape(height, -1).view(np.uint8)
    padded = np.zeros((height, rows.shape[1] + pad), np.uint8)
    padded[:, :rows.shape[1]] = rows
    msg = Image(height=height, width=width, encoding=encoding, step=padded.shape[1],
                is_bigendian=int(bigendian))
    msg.data = padded.tobytes()
    return _over_the_wire(msg)


@pytest.fixture
def rgb():
    generator = np.random.default_rng(0)
    return generator.integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize('pad', [0, 3])
def test_colour_encodings_give_rgb(rgb, pad):
    alpha = np.full((5, 7, 1), 200, np.uint8)
    cases = {
        'rgb8': rgb,
        'bgr8': rgb[:, :, ::-1],
        'rgba8': np.concatenate([rgb, alpha], axis=2),
        'bgra8': np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
    }
    for encoding, array in cases.items():
        out = image_to_rgb(_image(np.ascontiguousarray(array), encoding, pad=pad))
        assert out.dtype == np.uint8 and out.shape == (5, 7, 3), encoding
        assert out.flags['C_CONTIGUOUS']
        np.testing.assert_array_equal(out, rgb, err_msg=encoding)


def test_mono8_is_grey_rgb(rgb):
    grey = rgb[:, :, 0].copy()
    out = image_to_rgb(_image(grey[:, :, None], 'mono8', pad=1))
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)


@pytest.mark.parametrize('bigendian', [False, True])
def test_mono16_keeps_the_top_byte(bigendian):
    depth = np.array([[0, 255, 256, 65535], [4096, 32768, 1000, 513]], np.uint16)
    out = image_to_rgb(_image(depth[:, :, None], 'mono16', pad=2, bigendian=bigendian))
    np.testing.assert_array_equal(out[:, :, 1], (depth >> 8).astype(np.uint8))


def test_all_numpy_encodings_are_the_six_documented():
    assert set(NUMPY_ENCODINGS) == {'rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16'}


def test_unsupported_encoding_is_named(rgb):
    msg = _image(rgb, 'rgb8')
    msg.encoding = 'yuv422_yuy2'
    with pytest.raises(ImageConversionError) as info:
        image_to_rgb(msg)
    assert info.value.kind == 'encoding'
    assert 'yuv422_yuy2' in str(info.value) and 'rgb8' in str(info.value)


def test_step_and_size_mismatch_are_detected(rgb):
    short_step = _image(rgb, 'rgb8')
    short_step.step = 7 * 3 - 1
    truncated = _image(rgb, 'rgb8')
    truncated.data = truncated.data[:-5]
    too_long = _image(rgb, 'rgb8')
    too_long.data = bytes(too_long.data) + b'\0' * 21
    for msg in (short_step, truncated, too_long):
        with pytest.raises(ImageConversionError) as info:
            image_to_rgb(msg)
        assert info.value.kind == 'size'


def test_empty_images_are_detected():
    for msg in (Image(encoding='rgb8'), Image(height=4, width=4, step=12, encoding='rgb8'),
                Image(height=0, width=4, step=12, encoding='rgb8', data=bytes(12))):
        with pytest.raises(ImageConversionError) as info:
            image_to_rgb(_over_the_wire(msg))
        assert info.value.kind == 'empty'


def test_compressed_roundtrip_and_garbage(rgb):
    big = cv2.resize(rgb, (70, 50), interpolation=cv2.INTER_NEAREST)
    ok, png = cv2.imencode('.png', big[:, :, ::-1])
    assert ok
    msg = _over_the_wire(CompressedImage(format='png', data=png.tobytes()))
    np.testing.assert_array_equal(compressed_to_rgb(msg), big)
    with pytest.raises(ImageConversionError) as info:
        compressed_to_rgb(CompressedImage(format='jpeg', data=b'not a jpeg at all'))
    assert info.value.kind == 'decode'
    with pytest.raises(ImageConversionError) as info:
        compressed_to_rgb(CompressedImage(format='jpeg'))
    assert info.value.kind == 'empty'


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8'])
def test_rgb_to_image_roundtrip(rgb, encoding):
    msg = _over_the_wire(rgb_to_image(rgb, Image(), encoding=encoding))
    assert (msg.height, msg.width, msg.step, msg.encoding) == (5, 7, 21, encoding)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
