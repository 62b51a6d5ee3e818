"""What the ROS tests share: a client node, a test camera, live_node on a tiny model.

Also the readers of /diagnostics; the fixtures ``node_model`` and ``client`` are in conftest.py.
"""

import collections
import ctypes
import os
from pathlib import Path

from builtin_interfaces.msg import Time
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import DEFAULT_TIMEOUT, INSTALL_LIB_DIR, start_executable, wait_for
from sensor_msgs.msg import Image

from live_ros.data.image_conversion import rgb_to_image


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
#: speaks after every frame. Measured with the tiny model of live_ros/testing/tiny_models.py.
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


def start_node(model_dir, *params, name=None, log_level=None, ready=r'listening on'):
    """Start live_node (the installed executable) on the tiny model; wait until it listens.

    ``ready`` None: return at once (a start that is meant to fail).
    """
    args = ['--ros-args', '-p', f'model:={model_dir}', '-p', 'device:=cpu']
    if log_level:
        args += ['--log-level', log_level]
    for param in params:
        args += ['-p', param]
    return start_executable('live_node', args, ready=ready)


def image_msg(rgb, stamp_ns, frame_id='test_camera'):
    """Build a camera image with an exact stamp."""
    msg = rgb_to_image(rgb, Image())
    msg.header.stamp = Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


def stamp_ns(msg):
    """Return a message's header stamp in integer nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def diagnostics_of(messages, camera=''):
    """Return the newest live_node status of /diagnostics as a dict of its key values.

    ``camera``: the status of that camera of a multi-camera node.
    """
    for array in reversed(messages):
        for status in array.status:
            if 'live_node' in status.name and status.name.endswith(
                    f'{camera} stream' if camera else 'stream'):
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
        # the /diagnostics status of this camera: 'front' for front/image of a multi-camera node
        self.stream = topic.strip('/').rpartition('image')[0].rstrip('/')
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

    def publish_used(self, diagnostics, msg=None, attempts=3):
        """Publish a frame, then wait until the model has used it (one frame at a time)."""
        return self.publish_counted(diagnostics, 'frames_decoded', msg, attempts, timeout=10.0,
                                    last_timeout=DEFAULT_TIMEOUT)

    def publish_received(self, diagnostics, msg=None, attempts=4):
        """Publish, then wait until /diagnostics counts one more image received."""
        return self.publish_counted(diagnostics, 'images_received', msg, attempts)

    def publish_counted(self, diagnostics, key, msg=None, attempts=4, timeout=5.0,
                        last_timeout=None):
        """Publish, then wait until this camera's /diagnostics counter ``key`` counts one more.

        Best effort may lose a frame just after discovery (the node's reader not matched yet):
        it is then sent again (a new stamp), at most ``attempts`` times, ``timeout`` seconds
        apart (the last try waits ``last_timeout``, default the same).
        """
        def report():
            return diagnostics_of(diagnostics, self.stream)

        self.client.spin_until(report, what='a /diagnostics')
        before = int(report().get(key, 0))
        for attempt in range(attempts):
            stamp = self.publish(msg=msg)
            last = attempt + 1 == attempts
            try:
                self.client.spin_until(
                    lambda: int((report() or {}).get(key, 0)) > before,
                    timeout=last_timeout if last and last_timeout else timeout,
                    what=f'{key} to count frame {len(self.sent)}')
                return stamp
            except AssertionError:
                if last:
                    raise
