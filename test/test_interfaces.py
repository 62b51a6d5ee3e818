"""Round trip of live_ros's own interfaces between two processes over real DDS (loopback).

One process plays the node's side (publishes live_ros/Response, serves live_ros/Ask); the
other plays a user's (calls Ask, receives Response). Proves the generated msg/srv, their
typesupport libraries and the ROS 2 runtime work together across processes, which is what
every ROS-facing part of the package relies on.
"""

import json
import os
import socket

from ros_helpers import DEFAULT_TIMEOUT, ros_env, run_domain_id
from ros_helpers import start_python

FRAME_STAMP = (1700000000, 123456789)

SERVER = r"""
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from live_ros.msg import Response
from live_ros.srv import Ask

SEC, NANOSEC = {sec}, {nanosec}


class Server(Node):
    def __init__(self):
        super().__init__('interfaces_test_server')
        self.pub = self.create_publisher(Response, 'live/response', 10)
        self.srv = self.create_service(Ask, 'live/ask', self.on_ask)
        self.next_id = 1
        self.pending = [(0, 'a person picks up a red cup', 3.5)]
        self.timer = self.create_timer(0.05, self.flush)

    def on_ask(self, request, response):
        print('server got query: ' + repr(request.query), flush=True)
        if not request.query.strip():
            response.accepted, response.query_id = False, 0
            response.message = 'empty query'
            return response
        response.accepted, response.query_id = True, self.next_id
        response.message = 'answer will be published on live/response'
        self.pending.append((self.next_id, 'you asked: ' + request.query, 12.5))
        self.next_id += 1
        return response

    def flush(self):
        # Publish only once the client's subscription is matched: discovery takes a while.
        if not self.pending or self.pub.get_subscription_count() == 0:
            return
        for query_id, text, stream_time in self.pending:
            for partial, chunk in ((True, text[:5]), (False, text)):
                msg = Response()
                msg.header.stamp.sec, msg.header.stamp.nanosec = SEC, NANOSEC
                msg.header.frame_id = 'camera'
                msg.text, msg.stream_time = chunk, stream_time
                msg.query_id, msg.partial = query_id, partial
                self.pub.publish(msg)
        self.pending = []


rclpy.init()
node = Server()
print('server ready', flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
finally:
    node.destroy_node()
    rclpy.try_shutdown()
print('server stopped cleanly', flush=True)
sys.exit(0)
"""

CLIENT = r"""
import json
import time

import rclpy
from rclpy.node import Node

from live_ros.msg import Response
from live_ros.srv import Ask

TIMEOUT = {timeout}

rclpy.init()
node = Node('interfaces_test_client')
received = []
node.create_subscription(Response, 'live/response', received.append, 10)
client = node.create_client(Ask, 'live/ask')
deadline = time.monotonic() + TIMEOUT
while not client.wait_for_service(timeout_sec=0.2):
    assert time.monotonic() < deadline, 'Ask service never appeared'


def call(query):
    future = client.call_async(Ask.Request(query=query))
    rclpy.spin_until_future_complete(node, future, timeout_sec=TIMEOUT)
    assert future.done(), 'Ask call got no answer'
    reply = future.result()
    return dict(accepted=reply.accepted, query_id=reply.query_id, message=reply.message)


asked = call('what is happening?')
refused = call('   ')


def finals():
    return {{m.query_id for m in received if not m.partial}}


deadline = time.monotonic() + TIMEOUT
while not {{0, asked['query_id']}} <= finals() and time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.1)

out = dict(asked=asked, refused=refused, responses=[
    dict(sec=m.header.stamp.sec, nanosec=m.header.stamp.nanosec, frame_id=m.header.frame_id,
         text=m.text, stream_time=m.stream_time, query_id=m.query_id, partial=m.partial)
    for m in received])
print('RESULT ' + json.dumps(out), flush=True)
node.destroy_node()
rclpy.shutdown()
"""


def test_response_and_ask_round_trip_between_processes(ros_install):
    server = start_python(['-c', SERVER.format(sec=FRAME_STAMP[0], nanosec=FRAME_STAMP[1])],
                          name='server')
    with server:
        server.wait_for_line('server ready')
        client = start_python(['-c', CLIENT.format(timeout=DEFAULT_TIMEOUT)], name='client')
        with client:
            assert client.wait(timeout=3 * DEFAULT_TIMEOUT) == 0, client.output()
        match = client.wait_for_line(r'^RESULT (.*)$')
        result = json.loads(match.group(1))
        code = server.stop()
    assert code == 0, server.output()
    assert 'server stopped cleanly' in server.output()
    assert "server got query: 'what is happening?'" in server.output()

    asked = result['asked']
    assert asked['accepted'] is True
    assert asked['query_id'] >= 1
    assert 'live/response' in asked['message']
    assert result['refused'] == {'accepted': False, 'query_id': 0, 'message': 'empty query'}

    finals = {r['query_id']: r for r in result['responses'] if not r['partial']}
    assert set(finals) == {0, asked['query_id']}, result['responses']
    answer = finals[asked['query_id']]
    assert answer['text'] == 'you asked: what is happening?'
    assert (answer['sec'], answer['nanosec']) == FRAME_STAMP
    assert answer['frame_id'] == 'camera'
    assert answer['stream_time'] == 12.5
    spoken = finals[0]
    assert spoken['text'] == 'a person picks up a red cup'
    assert spoken['stream_time'] == 3.5

    partials = [r for r in result['responses'] if r['partial']]
    assert {r['query_id'] for r in partials} == {0, asked['query_id']}
    for partial in partials:
        assert finals[partial['query_id']]['text'].startswith(partial['text'])


def test_ros_processes_follow_the_network_rule(ros_install):
    env = ros_env()
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert env['ROS_DOMAIN_ID'] == str(run_domain_id())
    assert 1 <= run_domain_id() <= 101
    if os.environ.get('LIVE_ROS_NETNS') == '1':
        # scripts/test.sh promised a loopback-only namespace: nothing else to send on.
        assert [name for _, name in socket.if_nameindex()] == ['lo']
