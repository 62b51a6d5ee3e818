"""live_node end to end: real rclpy over DDS, the node in its own process, a tiny model.

Frames in -> ``response`` out with the frame's stamp; ``ask`` -> an answer with the same query
id; the ``query`` topic; ``reset`` clears the KV cache; Ctrl-C stops the node cleanly.
"""

import collections

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from ros_helpers import DEFAULT_TIMEOUT, wait_for


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
