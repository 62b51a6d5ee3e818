"""live_node end to end: real rclpy over DDS, the node in its own process, a tiny model.

Frames in -> ``response`` out with the frame's stamp; ``ask`` -> an answer with the same query
id; the ``query`` topic; ``reset`` clears the KV cache; Ctrl-C stops the node cleanly.
"""

import signal
import time

from diagnostic_msgs.msg import DiagnosticArray
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import start_executable
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from live_ros.msg import Response
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.srv import Ask
from node_helpers import Camera, diagnostics_of, start_node, stamp_ns


def test_frames_in_response_out_with_the_frame_stamp(node_model, client):
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    partials = client.subscribe(Response, 'response_partial', RESPONSE_QOS)
    with start_node(node_model, 'response_threshold:=1.0', 'max_new_tokens:=4') as node:
        camera = Camera(client)
        camera.wait_for_node()
        client.spin_until(lambda: client.node.count_publishers('/response') > 0,
                          what='the response publisher')
        for _ in range(3):
            stamp = camera.publish()
            client.spin_until(lambda: any(stamp_ns(r) == stamp for r in responses),
                              what=f'a response stamped {stamp}')
        assert node.proc.poll() is None, node.output()
    first = camera.sent[0]
    for response in responses:
        assert stamp_ns(response) in camera.sent
        assert response.header.frame_id == 'test_camera'
        assert response.query_id == 0 and not response.partial
        assert response.text
        # stream time: seconds since the first frame, on the camera's clock
        assert response.stream_time == pytest.approx((stamp_ns(response) - first) * 1e-9)
    assert partials, 'no streamed partial text'
    finals = {stamp_ns(r): r.text for r in responses}
    for partial in partials:
        assert partial.partial and partial.query_id == 0
        assert finals[stamp_ns(partial)].startswith(partial.text)


def test_ask_query_topic_and_reset(node_model, client):
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    queries = client.node.create_publisher(String, 'query', 10)
    with start_node(node_model, 'max_new_tokens:=4', 'diagnostics_period:=0.2') as node:
        camera = Camera(client)
        camera.wait_for_node()
        for _ in range(3):
            camera.publish_used(diagnostics)
        assert not responses, 'the steered model must stay silent at the default threshold'
        assert diagnostics_of(diagnostics)['last_latency_s'] == 'n/a'

        reply = client.call(Ask, 'ask', Ask.Request(query='What am I doing?', client='test'))
        assert reply.accepted and reply.query_id > 0, reply.message
        answer = client.spin_until(
            lambda: next((r for r in responses if r.query_id == reply.query_id), None),
            what=f'the answer to query {reply.query_id}')
        assert answer.text and not answer.partial
        assert stamp_ns(answer) == camera.sent[-1]  # answered after the newest frame

        client.spin_until(lambda: queries.get_subscription_count() > 0,
                          what='live_node to subscribe to query')
        queries.publish(String(data='And now?'))
        spoken = client.spin_until(
            lambda: next((r for r in responses if r.query_id > reply.query_id), None),
            what='the answer to the query topic')
        assert spoken.query_id == reply.query_id + 1

        latency = client.spin_until(
            lambda: (diagnostics_of(diagnostics) or {}).get('last_latency_s') != 'n/a'
            and diagnostics_of(diagnostics)['last_latency_s'],
            what='a response latency in /diagnostics')
        assert float(latency) > 0
        before = int(diagnostics_of(diagnostics)['cache_tokens'])
        assert before > 0
        result = client.call(Trigger, 'reset', Trigger.Request())
        assert result.success, result.message
        assert result.message.endswith('-> 0 tokens'), result.message
        diagnostics.clear()
        client.spin_until(lambda: diagnostics_of(diagnostics) is not None, what='diagnostics')
        assert diagnostics_of(diagnostics)['cache_tokens'] == '0'

        camera.publish()  # the stream goes on after a reset
        client.spin_until(
            lambda: int((diagnostics_of(diagnostics) or {}).get('cache_tokens', 0)) > 0,
            what='the cache to fill again')
        assert node.proc.poll() is None, node.output()


@pytest.mark.parametrize('signals', [
    [signal.SIGINT], [signal.SIGTERM],
    # Ctrl-C under ros2 launch: the terminal signals the process group and launch forwards it;
    # a user presses again. Repeats all through the shutdown must not break it.
    [signal.SIGINT] * 20], ids=['SIGINT', 'SIGTERM', 'SIGINT-repeated'])
def test_ctrl_c_or_sigterm_stops_cleanly(node_model, client, signals):
    node = start_node(node_model, 'response_threshold:=1.0', 'max_new_tokens:=50')
    camera = Camera(client)
    camera.wait_for_node()
    for _ in range(3):  # the engine is busy decoding when the signal comes
        camera.publish()
    # Ctrl-C (SIGINT) or a supervisor's SIGTERM: rclpy shuts down, the engine threads are
    # joined, the process exits with status 0 within 5 s.
    for signal_number in signals:
        node.proc.send_signal(signal_number)  # a no-op once the process has exited
        time.sleep(0.1)
    try:
        code = node.proc.wait(timeout=5.0)
    finally:
        node.stop()
    assert code == 0, node.output()
    assert 'Traceback' not in node.output(), node.output()
    stopped = [line for line in node.output().splitlines() if 'stopped, no thread left' in line]
    assert stopped and stopped[0].startswith('[INFO]') and '[live_node]' in stopped[0], \
        node.output()


def test_start_prints_only_ros_log_lines_unless_debug(node_model):
    # transformers' "Loading weights" bars and library warnings are not a user's business;
    # at debug level they are shown.
    with start_node(node_model) as node:
        lines = node.output().splitlines()
    assert lines and all(line.startswith('[') for line in lines), node.output()
    with start_node(node_model, log_level='debug') as node:
        loud = node.output()
    assert 'Loading weights' in loud, loud


def test_ask_command_prints_the_answer(node_model, client):
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    with start_node(node_model, 'max_new_tokens:=4', 'diagnostics_period:=0.2') as node:
        camera = Camera(client)
        camera.wait_for_node()
        camera.publish_received(diagnostics)
        with start_executable('ask', ['--stream', 'What am I doing?']) as ask:
            assert ask.wait(timeout=60.0) == 0, ask.output()
        answer = client.spin_until(lambda: next((r for r in responses if r.query_id), None),
                                   what='the answer on the response topic')
        assert ask.lines[-1] == answer.text, ask.output()
        with start_executable('ask', ['   ']) as refused:
            assert refused.wait(timeout=60.0) == 1
        assert 'refused: empty query' in refused.output()
        assert node.proc.poll() is None


def test_video_publisher_feeds_the_node_at_the_model_rate(node_model, client):
    # Reliable end to end (as the demo runs it): the assertions below count every frame, and a
    # best-effort frame may be lost on a quiet loopback too (29 of 30 once).
    images = client.subscribe(Image, 'image', QoSProfile(depth=50,
                                                         reliability=ReliabilityPolicy.RELIABLE))
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    with start_node(node_model, 'response_threshold:=1.0', 'max_new_tokens:=2',
                    'image_reliability:=reliable') as node:
        publisher = ['--ros-args', '-p', 'source:=synthetic:5', '-p', 'fps:=10.0',
                     '-p', 'count:=30', '-p', 'max_size:=64', '-p', 'wait_for_subscribers:=2',
                     '-p', 'reliability:=reliable']
        with start_executable('video_publisher', publisher) as video:
            client.spin_until(lambda: video.proc.poll() is not None, timeout=60.0,
                              what='video_publisher to publish its 30 frames')
            assert video.wait() == 0, video.output()
        client.spin_until(lambda: len(responses) >= 6, what='6 responses from 30 frames')
        client.spin_for(0.5)
        assert node.proc.poll() is None
    sent = [stamp_ns(msg) for msg in images]
    spoken = [stamp_ns(msg) for msg in responses]
    assert len(sent) == 30
    # 10 Hz camera, 2 fps model: the model speaks after camera frames (by header stamp) about
    # every fifth one, on the 0.5 s grid of the first; video_publisher stamps each frame when
    # it publishes it, so the frame that reaches a due time may be the one before or after.
    assert set(spoken) <= set(sent) and spoken[0] == sent[0]
    grid = [round((s - sent[0]) / 500_000_000) for s in spoken]
    assert grid == list(range(len(grid))) and len(grid) >= 5
    assert all(abs(s - sent[0] - k * 500_000_000) < 150_000_000 for k, s in zip(grid, spoken))
