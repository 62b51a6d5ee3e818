"""live_node end to end: real rclpy over DDS, the node in its own process, a tiny model.

Frames in -> ``response`` out with the frame's stamp; ``ask`` -> an answer with the same query
id; the ``query`` topic; ``reset`` clears the KV cache; Ctrl-C stops the node cleanly.
"""

import collections
import ctypes
import os
from pathlib import Path
import signal
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import DEFAULT_TIMEOUT, INSTALL_LIB_DIR, start_executable, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from live_ros.data.image_conversion import rgb_to_image
from live_ros.msg import Response
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.srv import Ask


def _load_interface_libraries():
    """Load live_ros's generated typesupport libraries into this process by path.

    rclpy finds them by name through LD_LIBRARY_PATH, which `source install/setup.bash`
    (scripts/test.sh) sets; a plain `python -m pytest` has not, and the test process talks
    live_ros/Response itself. Libraries already loaded are found by name.
    """
    libraries = sorted(INSTALL_LIB_DIR.glob('liblive_ros__*.so'),
                       key=lambda path: ('generator' not in path.name, path.name))
    for library in libraries:
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)


_load_interface_libraries()


class RosClient:
    """An rclpy node inside the test process, with its own context, spun while waiting."""

    def __init__(self, name='live_test_client'):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.messages = collections.defaultdict(list)

    def subscribe(self, msg_type, topic, qos=10):
        """Collect every message on ``topic``; returns the live list."""
        received = self.messages[topic]
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def spin_until(self, predicate, timeout=DEFAULT_TIMEOUT, what='condition'):
        """Spin this node until ``predicate()`` is truthy (no fixed sleeps)."""
        def spun():
            self.executor.spin_once(timeout_sec=0.02)
            return predicate()
        return wait_for(spun, timeout=timeout, interval=0.0, what=what)

    def spin_for(self, seconds):
        """Keep receiving for a while (used only where the absence of messages is the point)."""
        deadline = self.node.get_clock().now().nanoseconds + int(seconds * 1e9)
        while self.node.get_clock().now().nanoseconds < deadline:
            self.executor.spin_once(timeout_sec=0.02)

    def call(self, srv_type, name, request, timeout=DEFAULT_TIMEOUT):
        """Call a service once it is discovered; return its response."""
        client = self.node.create_client(srv_type, name)
        self.spin_until(client.service_is_ready, timeout, what=f'service {name}')
        future = client.call_async(request)
        self.spin_until(future.done, timeout, what=f'reply from {name}')
        return future.result()

    def close(self):
        """Destroy the node and shut its context down."""
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


# ------------------------------------------------------------------------------------------
# The node under test and its tiny model
# ------------------------------------------------------------------------------------------

#: lm_head row of the interval token along the frames' direction: P(interval) ~ 0.94 after
#: every frame, so at the default threshold (0.725) the model stays silent and at 1.0 it
#: speaks after every frame. Measured with the tiny model of test/tiny_models.py.
INTERVAL_GAIN = 1.1


def save_node_model(root):
    """Save a tiny LIVE model directory whose frame decisions the threshold controls.

    Every frame becomes the same embedding (connector output = its bias, a unit direction u
    times 50) and the interval token's lm_head row is u * INTERVAL_GAIN, so P(interval) after
    a frame is high but below 1. The node loads the directory like any trained model.
    """
    import shutil

    import torch
    from live_ros.testing.tiny_models import _quiet_transformers, save_tiny_backbones, tiny_config
    from transformers import LlamaForCausalLM

    from live_ros.model.live_model import LiveModel

    _quiet_transformers()
    root = Path(root)
    llm_dir, _ = save_tiny_backbones(root)
    cfg = tiny_config(root)
    plain = LiveModel.from_config(cfg, device='cpu', dtype=torch.float32)
    interval, stops = plain.interval_token_id, plain.template.stop_token_ids
    llm = LlamaForCausalLM.from_pretrained(llm_dir)
    direction = torch.randn(llm.config.hidden_size, generator=torch.Generator().manual_seed(0))
    direction /= direction.norm()
    with torch.no_grad():
        llm.lm_head.weight[interval] = direction * INTERVAL_GAIN
        # Logit 0 for the end tokens, below the best of the others: every answer runs to
        # max_new_tokens, so a test decides how long it is (and can cancel it mid-way).
        llm.lm_head.weight[sorted(stops)] = 0.0
    steered = root / 'steered-llm'
    llm.save_pretrained(steered)
    for name in os.listdir(llm_dir):
        if 'token' in name:
            shutil.copy(os.path.join(llm_dir, name), steered)
    torch.manual_seed(0)
    model = LiveModel.from_config(cfg.replace(llm=str(steered)), device='cpu',
                                  dtype=torch.float32)
    with torch.no_grad():
        model.connector[2].weight.zero_()
        model.connector[2].bias.copy_(direction * 50.0)
    return model.save_pretrained(str(root / 'node-model'))


@pytest.fixture(scope='session')
def node_model(tmp_path_factory, ros_install):
    """One steered tiny model directory for every node test of the session."""
    return save_node_model(tmp_path_factory.mktemp('live_node_model'))


def start_node(model_dir, *params, name=None, log_level=None):
    """Start live_node (the installed executable) on the tiny model; wait until it listens."""
    args = ['--ros-args', '-p', f'model:={model_dir}', '-p', 'device:=cpu']
    if log_level:
        args += ['--log-level', log_level]
    for param in params:
        args += ['-p', param]
    return start_executable('live_node', args, ready=r'listening on')


def image_msg(rgb, stamp_ns, frame_id='test_camera'):
    """Build a camera image with an exact stamp."""
    msg = rgb_to_image(rgb, Image())
    msg.header.stamp = Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


def stamp_ns(msg):
    """Return a message's header stamp in integer nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def diagnostics_of(messages):
    """Return the newest live_node status of /diagnostics as a dict of its key values."""
    for array in reversed(messages):
        for status in array.status:
            if 'live_node' in status.name:
                values = {kv.key: kv.value for kv in status.values}
                values['_level'] = status.level
                values['_message'] = status.message
                return values
    return None


class Camera:
    """A test camera: publishes frames on the node's ``image`` with stamps on a grid."""

    def __init__(self, client, topic='image', start_ns=1_700_000_000_000_000_000, qos=None,
                 msg_type=Image):
        self.client = client
        self.publisher = client.node.create_publisher(
            msg_type, topic, qos or qos_profile_sensor_data)
        self.next_ns = start_ns
        self.sent = []
        self.rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)

    def wait_for_node(self):
        """Wait until live_node's image subscription is matched (discovery)."""
        self.client.spin_until(lambda: self.publisher.get_subscription_count() > 0,
                               what='live_node to subscribe to images')

    def publish(self, period_ns=500_000_000, msg=None):
        """Publish the next frame (or ``msg`` stamped as the next frame); return its stamp."""
        stamp = self.next_ns
        self.next_ns += period_ns
        msg = msg or image_msg(self.rgb, stamp)
        msg.header.stamp = Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000)
        self.publisher.publish(msg)
        self.sent.append(stamp)
        return stamp

    def publish_used(self, diagnostics, msg=None):
        """Publish a frame, then wait until the model has used it (one frame at a time)."""
        used = int((diagnostics_of(diagnostics) or {}).get('frames_decoded', 0))
        stamp = self.publish(msg=msg)
        self.client.spin_until(
            lambda: int((diagnostics_of(diagnostics) or {}).get('frames_decoded', 0)) > used,
            what=f'live_node to use frame {len(self.sent)}')
        return stamp

    def publish_received(self, diagnostics, msg=None):
        """Publish, then wait until /diagnostics counts it received (no queue overflow)."""
        stamp = self.publish(msg=msg)
        self.client.spin_until(
            lambda: (diagnostics_of(diagnostics) or {}).get('images_received')
            == str(len(self.sent)), what=f'live_node to receive frame {len(self.sent)}')
        return stamp


@pytest.fixture
def client(ros_install):
    client = RosClient()
    yield client
    client.close()


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------

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

        reply = client.call(Ask, 'ask', Ask.Request(query='What am I doing?'))
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
    images = client.subscribe(Image, 'image', qos_profile_sensor_data)
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    with start_node(node_model, 'response_threshold:=1.0', 'max_new_tokens:=2') as node:
        publisher = ['--ros-args', '-p', 'source:=synthetic:5', '-p', 'fps:=10.0',
                     '-p', 'count:=30', '-p', 'max_size:=64', '-p', 'wait_for_subscribers:=2']
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
    # 10 Hz camera, 2 fps model: every fifth frame, chosen by header stamp
    assert spoken == sent[::5]
