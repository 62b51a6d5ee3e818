"""ask: put a question to live_node and print its answer, for users without ros2cli.

    ros2 run live_ros ask "What am I doing?"
    ros2 run live_ros ask --stream --timeout 120 "What happens next?" --ros-args -r __ns:=/robot

Subscribes to ``response`` (and ``response_partial`` with --stream) first, so the answer cannot
slip by, then calls the ``ask`` service and prints the response that carries the query id the
service returned. Exit status: 0 answered, 1 refused or node not found, 2 no answer in time.
"""

import argparse
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.utilities import remove_ros_args

from live_ros.msg import Response
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.srv import Ask


class AskClient(Node):
    """Ask once, then collect the matching response (and its partial text when streaming)."""

    def __init__(self, stream=False):
        super().__init__('ask')
        self.stream = stream
        self.query_id = None
        self.finals = {}  # query_id -> final Response; the answer may beat the service reply
        self._printed = ''
        self.client = self.create_client(Ask, 'ask')
        self.create_subscription(Response, 'response', self.on_response, RESPONSE_QOS)
        if stream:
            self.create_subscription(
                Response, 'response_partial', self.on_partial, RESPONSE_QOS)

    def on_response(self, msg):
        """Keep answers to questions; which one is ours is known once the service replies."""
        if msg.query_id != 0:
            self.finals[msg.query_id] = msg

    def on_partial(self, msg):
        """Print streamed text as it grows so a user sees the answer being written."""
        if self.query_id is None or msg.query_id != self.query_id:
            return
        if msg.text.startswith(self._printed):
            sys.stdout.write(msg.text[len(self._printed):])
            sys.stdout.flush()
            self._printed = msg.text

    def wait_for_node(self, timeout):
        """Wait for the service and the response publisher; discovery can take seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.client.service_is_ready()
                    and self.count_publishers(self.resolve_topic_name('response')) > 0):
                return True
            rclpy.spin_once(self, timeout_sec=0.1)
        return False

    def ask(self, question, timeout):
        """Call the service; return the Ask response or None when no reply came in time."""
        future = self.client.call_async(Ask.Request(query=question))
        rclpy.spin_until_future_complete(self, future, timeout_sec=timeout)
        return future.result() if future.done() else None

    def wait_for_answer(self, timeout):
        """Spin until the final response with our query id arrives or the time is up."""
        deadline = time.monotonic() + timeout
        while self.query_id not in self.finals and time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.1)
        return self.finals.get(self.query_id)


def parse_args(argv):
    """Command-line options (ROS arguments removed beforehand)."""
    parser = argparse.ArgumentParser(prog='ask', description=__doc__.split('\n')[0])
    parser.add_argument('question', help='the question, quoted')
    parser.add_argument('--timeout', type=float, default=60.0,
                        help='seconds to wait for the answer (default 60)')
    parser.add_argument('--wait-for-node', type=float, default=15.0,
                        help='seconds to wait for live_node to be discovered (default 15)')
    parser.add_argument('--stream', action='store_true',
                        help='print the answer while it is being decoded')
    return parser.parse_args(argv)


def main(args=None):
    """Entry point of ``ros2 run live_ros ask "question"``."""
    argv = remove_ros_args(args if args is not None else sys.argv)[1:]
    options = parse_args(argv)
    rclpy.init(args=args)
    node = None
    try:
        node = AskClient(stream=options.stream)
        if not node.wait_for_node(options.wait_for_node):
            print(f'ask: no live_node answering on {node.client.srv_name} '
                  f'after {options.wait_for_node:g} s', file=sys.stderr)
            return 1
        reply = node.ask(options.question, options.wait_for_node)
        if reply is None:
            print('ask: the ask service did not reply', file=sys.stderr)
            return 1
        if not reply.accepted:
            print(f'ask: refused: {reply.message}', file=sys.stderr)
            return 1
        node.query_id = reply.query_id
        answer = node.wait_for_answer(options.timeout)
        if answer is None:
            if node._printed:
                print()
            print(f'ask: no answer to query {reply.query_id} within {options.timeout:g} s',
                  file=sys.stderr)
            return 2
        if options.stream and answer.text.startswith(node._printed):
            print(answer.text[len(node._printed):])
        else:
            print(answer.text)
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 130
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
