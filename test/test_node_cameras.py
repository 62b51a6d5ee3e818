"""One live_node, several cameras: one model, a stream per camera under the camera's name."""

from diagnostic_msgs.msg import DiagnosticArray
import pytest
from std_srvs.srv import Trigger

from live_ros.msg import Response
from live_ros.ros.live_node import camera_names
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.srv import Ask
from node_helpers import Camera, diagnostics_of, start_node, stamp_ns


def test_camera_names():
    assert camera_names([]) == ['']
    assert camera_names(['front', '/rear/', 'arm/wrist']) == ['front', 'rear', 'arm/wrist']
    for bad, reason in ((['front', 'front'], 'appears twice'), (['2cam'], 'not a ROS name'),
                        (['a b'], 'not a ROS name'), ([''], 'not a ROS name')):
        with pytest.raises(ValueError, match=reason):
            camera_names(bad)


def test_two_cameras_one_model_each_its_own_stream(node_model, client):
    front_said = client.subscribe(Response, 'front/response', RESPONSE_QOS)
    rear_said = client.subscribe(Response, 'rear/response', RESPONSE_QOS)
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    with start_node(node_model, 'cameras:=[front, rear]', 'max_new_tokens:=4',
                    'diagnostics_period:=0.2') as node:
        front = Camera(client, topic='front/image')
        rear = Camera(client, topic='rear/image', start_ns=1_800_000_000_000_000_000)
        front.wait_for_node()
        rear.wait_for_node()
        assert 'for 2 cameras' in node.output()
        for _ in range(2):
            front.publish_used(diagnostics)   # frames_decoded of the front stream: see below
        assert int(diagnostics_of(diagnostics, 'front')['frames_decoded']) >= 2
        assert diagnostics_of(diagnostics, 'rear')['frames_decoded'] == '0'
        assert diagnostics_of(diagnostics, 'front')['camera'] == 'front'

        asked = client.call(Ask, 'rear/ask', Ask.Request(query='What is behind me?'))
        assert asked.accepted, asked.message
        assert 'rear/response' in asked.message
        rear.publish()   # the answer follows the rear camera's next frame
        answer = client.spin_until(
            lambda: next((r for r in rear_said if r.query_id == asked.query_id), None),
            what='the rear answer')
        assert stamp_ns(answer) == rear.sent[-1] and answer.text
        again = client.call(Ask, 'front/ask', Ask.Request(query='And in front?'))
        assert again.accepted and again.query_id > asked.query_id   # ids unique over cameras
        client.spin_until(lambda: any(r.query_id == again.query_id for r in front_said),
                          what='the front answer')
        assert all(r.query_id != again.query_id for r in rear_said)
        assert all(stamp_ns(r) in front.sent for r in front_said)

        front_only = client.call(Trigger, 'front/reset', Trigger.Request())
        assert front_only.success and front_only.message.endswith('-> 0 tokens')
        diagnostics.clear()
        client.spin_until(lambda: diagnostics_of(diagnostics, 'rear') is not None,
                          what='diagnostics')
        assert diagnostics_of(diagnostics, 'front')['cache_tokens'] == '0'
        assert int(diagnostics_of(diagnostics, 'rear')['cache_tokens']) > 0
        everything = client.call(Trigger, 'reset', Trigger.Request())
        assert everything.success
        assert 'front: context cleared' in everything.message
        assert 'rear: context cleared' in everything.message
        assert node.proc.poll() is None, node.output()


def test_bad_camera_names_end_the_node_with_the_reason(node_model):
    node = start_node(node_model, 'cameras:=[front, front]', ready=None)
    try:
        assert node.proc.wait(timeout=60) == 1
    finally:
        node.stop()
    assert "cameras: a name appears twice in ['front', 'front']" in node.output()
