"""live_node parameters over DDS: declared, changed at runtime, refused with a reason.

Declared as live_ros.ros.parameters says; runtime changes take effect; invalid values are
refused with a reason; read-only ones stay put; bad start-up values stop the node (status 1).
"""

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import DescribeParameters, ListParameters, SetParameters
from rclpy.parameter import Parameter
from ros_helpers import start_executable

from live_ros.msg import Response
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.ros.parameters import PARAMETERS
from node_helpers import Camera, diagnostics_of, start_node


#: Parameters every rclpy node has besides its own.
ROS_OWN = {'use_sim_time', 'start_type_description_service'}


def _set(client, **values):
    request = SetParameters.Request(parameters=[
        Parameter(name, value=value).to_parameter_msg() for name, value in values.items()])
    return client.call(SetParameters, '/live_node/set_parameters', request).results


def test_declared_parameters_match_the_table_and_changes_take_effect(node_model, client):
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    with start_node(node_model, 'max_new_tokens:=3', 'diagnostics_period:=0.2') as node:
        names = client.call(ListParameters, '/live_node/list_parameters',
                            ListParameters.Request()).result.names
        assert set(names) - ROS_OWN == {param.name for param in PARAMETERS}
        described = client.call(DescribeParameters, '/live_node/describe_parameters',
                                DescribeParameters.Request(names=[p.name for p in PARAMETERS]))
        for param, descriptor in zip(PARAMETERS, described.descriptors):
            assert descriptor.read_only == param.read_only, param.name
            assert descriptor.description, param.name
        threshold = described.descriptors[
            [p.name for p in PARAMETERS].index('response_threshold')]
        assert threshold.type == ParameterType.PARAMETER_DOUBLE
        # negative: the model's own threshold, which the node then runs with
        assert (threshold.floating_point_range[0].from_value,
                threshold.floating_point_range[0].to_value) == (-1.0, 1.0)

        # At the default threshold (the model's own) the steered model stays silent ...
        camera = Camera(client)
        camera.wait_for_node()
        for _ in range(2):
            camera.publish_used(diagnostics)
        assert not responses
        assert diagnostics_of(diagnostics)['response_threshold'] == '0.725'
        assert diagnostics_of(diagnostics)['fps'] == '2.0'   # the model's own rate

        # ... a higher threshold makes it speak at the next frame ...
        result, = _set(client, response_threshold=1.0)
        assert result.successful, result.reason
        stamp = camera.publish_used(diagnostics)
        spoken = client.spin_until(
            lambda: next((r for r in responses if r.header.stamp.sec * 10**9
                          + r.header.stamp.nanosec == stamp), None),
            what='a response after raising the threshold')
        assert spoken.query_id == 0
        assert diagnostics_of(diagnostics)['response_threshold'] in ('1.0', '1')

        # ... and a lower one silences it again.
        result, = _set(client, response_threshold=0.5)
        assert result.successful, result.reason
        count = len(responses)
        for _ in range(2):
            camera.publish_used(diagnostics)
        client.spin_for(0.5)
        assert len(responses) == count

        refused = {
            'response_threshold': 1.5,
            'max_new_tokens': -1,
            'fps': -1.0,
            'max_query_chars': 0,
        }
        for name, value in refused.items():
            result, = _set(client, **{name: value})
            assert not result.successful, name
            assert name in result.reason and 'out of range' in result.reason, result.reason
        # a value of the wrong type is refused in words (rclpy alone says "expected '3' got
        # '4'"), and the parameter keeps its value
        for name, value, reason in (
                ('response_threshold', 'high', "response_threshold takes a number, not a "
                                               "string 'high'"),
                ('publish_partial', 'hello', "publish_partial takes true or false, not a "
                                             "string 'hello'"),
                ('max_query_chars', 2.5, 'max_query_chars takes an integer, not a number 2.5')):
            result, = _set(client, **{name: value})
            assert not result.successful and result.reason == reason, result.reason
        result, = _set(client, model='/elsewhere')
        assert not result.successful and 'read-only' in result.reason
        results = _set(client, max_new_tokens=8, fps=4.0, publish_partial=False)
        assert all(result.successful for result in results), results
        result, = _set(client, fps=5)   # an integer for a float parameter means the float
        assert result.successful, result.reason
        client.spin_until(lambda: diagnostics_of(diagnostics)['fps'] == '5.0',
                          what='the new fps on /diagnostics')
        assert node.proc.poll() is None


def test_invalid_start_up_values_stop_the_node_with_a_reason(ros_install, node_model):
    for param, reason in (('response_threshold:=2.0', 'response_threshold'),
                          ('image_reliability:=sometimes', 'must be one of')):
        args = ['--ros-args', '-p', f'model:={node_model}', '-p', param]
        with start_executable('live_node', args) as node:
            assert node.wait(timeout=60.0) == 1, node.output()
        assert reason in node.output()
