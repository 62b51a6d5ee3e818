"""Bad input never takes live_node down: odd images, bad queries, a broken model.

Each bad image kind is logged once (throttled), counted on /diagnostics and skipped; the node
keeps answering. A model that cannot load ends the process with a clear error and status 1;
a model that fails inside the engine is reported on /diagnostics while the stream goes on.
"""

import json
import os

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from ros_helpers import start_executable
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from live_ros.msg import Response
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.srv import Ask
from node_helpers import Camera, diagnostics_of, image_msg, start_node



def _bad_images(rgb):
    """Build one message per kind of bad raw image a camera driver might send."""
    unsupported = image_msg(rgb, 0)
    unsupported.encoding = 'yuv422_yuy2'
    short_step = image_msg(rgb, 0)
    short_step.step = 10
    truncated = image_msg(rgb, 0)
    truncated.data = bytes(truncated.data[:-7])
    empty = Image(encoding='rgb8', header=unsupported.header)
    return {'encoding': unsupported, 'size': short_step, 'size ': truncated, 'empty': empty}


def _count(output, text):
    return sum(text in line for line in output.splitlines())


def test_bad_images_and_queries_are_refused_and_the_node_keeps_answering(node_model, client):
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    queries = client.node.create_publisher(String, 'query', 10)
    with start_node(node_model, 'max_new_tokens:=3', 'max_query_chars:=40',
                    'diagnostics_period:=0.2', 'log_throttle_period:=3600.0') as node:
        camera = Camera(client)
        camera.wait_for_node()
        bad = _bad_images(camera.rgb)
        camera.publish_used(diagnostics)
        for _ in range(3):  # every kind three times, each at a due stamp
            for msg in bad.values():
                camera.publish_received(diagnostics, msg=msg)
        camera.publish_used(diagnostics)
        camera.publish_used(diagnostics)
        camera.next_ns -= 2 * 500_000_000  # stamp older than the newest frame: stale
        camera.publish_received(diagnostics)
        client.spin_until(
            lambda: (diagnostics_of(diagnostics) or {}).get('images_bad') == '12',
            what='12 bad frames counted')
        assert diagnostics_of(diagnostics)['frames_decoded'] == '3'
        values = diagnostics_of(diagnostics)
        assert values['images_stale'] == '1'
        assert values['images_received'] == str(len(camera.sent))

        # still answering, while empty and over-long questions are refused with a reason
        empty = client.call(Ask, 'ask', Ask.Request(query='   '))
        assert not empty.accepted and empty.query_id == 0 and 'empty' in empty.message
        long = client.call(Ask, 'ask', Ask.Request(query='why ' * 20))
        assert not long.accepted and 'too long' in long.message and '40' in long.message
        client.spin_until(lambda: queries.get_subscription_count() > 0, what='query topic')
        queries.publish(String(data=''))
        node.wait_for_line(r'query refused: empty query')
        reply = client.call(Ask, 'ask', Ask.Request(query='What am I doing?'))
        assert reply.accepted, reply.message
        client.spin_until(lambda: any(r.query_id == reply.query_id for r in responses),
                          what='the answer after the bad input')
        assert node.proc.poll() is None
    output = node.output()
    # one clear line per kind, however many bad frames of that kind came
    assert _count(output, 'bad image (encoding)') == 1, output
    assert "unsupported encoding 'yuv422_yuy2'" in output
    assert _count(output, 'bad image (size)') == 1, output
    assert _count(output, 'bad image (empty)') == 1, output
    assert _count(output, 'stale frame') == 1, output
    assert 'Traceback' not in output, output


def test_undecodable_compressed_images(node_model, client):
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    with start_node(node_model, 'compressed:=true', 'diagnostics_period:=0.2') as node:
        camera = Camera(client, topic='image/compressed', msg_type=CompressedImage)
        camera.wait_for_node()
        ok, jpeg = cv2.imencode('.jpg', camera.rgb)
        assert ok
        good = CompressedImage(format='jpeg', data=jpeg.tobytes())
        camera.publish_used(diagnostics, msg=good)
        broken = CompressedImage(format='jpeg', data=b'\xff\xd8 not really a jpeg')
        camera.publish_received(diagnostics, msg=broken)
        camera.publish_used(diagnostics, msg=good)
        camera.publish_received(diagnostics, msg=CompressedImage(format='jpeg'))
        client.spin_until(
            lambda: (diagnostics_of(diagnostics) or {}).get('images_bad') == '2'
            and diagnostics_of(diagnostics).get('frames_decoded') == '2',
            what='2 decoded and 2 refused compressed frames')
        assert node.proc.poll() is None
    assert 'bad image (decode)' in node.output()
    assert 'bad image (empty)' in node.output()


def test_model_that_cannot_load_exits_non_zero(ros_install, tmp_path):
    with start_executable('live_node', ['--ros-args', '-p', f'model:={tmp_path}/missing',
                                        '-p', 'device:=cpu']) as node:
        assert node.wait(timeout=60.0) == 1
    assert 'cannot load model' in node.output() and 'missing' in node.output()
    # Through the ROS logger (console format: [SEVERITY] [stamp] [logger]: text), not print.
    fatal = [line for line in node.output().splitlines() if 'cannot load model' in line]
    assert fatal[0].startswith('[FATAL]') and '[live_node]: error:' in fatal[0], fatal


def test_engine_errors_are_reported_and_the_stream_goes_on(node_model, client, tmp_path):
    # A model whose frame size disagrees with its vision tower: every frame fails inside the
    # engine (the tower rejects the pixels), a real exception on the encoder side.
    broken = tmp_path / 'broken-model'
    broken.mkdir()
    for name in os.listdir(node_model):
        if name != 'live_config.json':
            os.symlink(os.path.join(node_model, name), broken / name)
    with open(os.path.join(node_model, 'live_config.json'), encoding='utf-8') as f:
        config = json.load(f)
    config['frame_size'] += 8
    (broken / 'live_config.json').write_text(json.dumps(config))
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    with start_node(str(broken), 'diagnostics_period:=0.2') as node:
        camera = Camera(client)
        camera.wait_for_node()
        camera.publish()
        first = client.spin_until(
            lambda: int((diagnostics_of(diagnostics) or {}).get('errors', 0)) >= 1
            and diagnostics_of(diagnostics), what='the engine error on /diagnostics')
        assert first['_level'] == DiagnosticStatus.ERROR
        assert first['last_error']
        # each new frame reaches the engine again: its threads survived the errors
        for errors in (2, 3):
            camera.publish()
            client.spin_until(
                lambda: int(diagnostics_of(diagnostics)['errors']) >= errors,
                what=f'{errors} engine errors')
        result = client.call(Trigger, 'reset', Trigger.Request())
        assert result.success, result.message
        assert node.proc.poll() is None
    assert node.proc.returncode == 0, node.output()


def test_bad_stamps_large_images_and_odd_questions(node_model, client):
    """A +1 h stamp, a zero stamp, a stamp going back; an oversized image; odd questions."""
    import numpy as np
    from builtin_interfaces.msg import Time
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    with start_node(node_model, 'max_new_tokens:=2', 'response_threshold:=1.0',
                    'diagnostics_period:=0.2', 'max_image_pixels:=5000') as node:
        camera = Camera(client)
        camera.wait_for_node()
        camera.publish_used(diagnostics)
        camera.next_ns += 3600 * 10 ** 9          # one frame an hour ahead ...
        camera.publish_received(diagnostics)
        camera.next_ns -= 3600 * 10 ** 9          # ... then the camera's own time again
        camera.publish_received(diagnostics)
        big = image_msg(np.zeros((100, 100, 3), np.uint8), 0)   # due: checked, refused
        camera.publish_received(diagnostics, msg=big)
        unstamped = image_msg(camera.rgb, 0)
        unstamped.header.stamp = Time()
        camera.publisher.publish(unstamped)       # a driver that leaves the stamp at 0
        camera.next_ns += 10 ** 9
        camera.publish_used(diagnostics)
        client.spin_until(lambda: (diagnostics_of(diagnostics) or {}).get('zero_stamps') == '1',
                          what='the zero stamp counted')
        values = diagnostics_of(diagnostics)
        assert values['stamp_jumps'] == '1' and values['stamps_back'] == '1', (
            {k: v for k, v in values.items() if 'stamp' in k or 'images' in k}, node.output())
        assert values['images_bad'] == '1', values         # the 10000-pixel image
        assert 'max_image_pixels' in node.output()
        spoken = client.spin_until(lambda: [r.stream_time for r in responses if r.stream_time],
                                   what='responses after the odd stamps')
        assert max(spoken) < 30.0, spoken                   # not an hour: the clock held
        # questions: zero-width characters only is empty; control characters are refused
        empty = client.call(Ask, 'ask', Ask.Request(query='\u200b\u200b '))
        assert not empty.accepted and 'empty' in empty.message
        bell = client.call(Ask, 'ask', Ask.Request(query='what\x07 now?'))
        assert not bell.accepted and 'control characters' in bell.message
        ok = client.call(Ask, 'ask', Ask.Request(query='\u200bWhat now?'))
        assert ok.accepted
        assert node.proc.poll() is None
