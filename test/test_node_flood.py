"""A 30 Hz camera flood against a deliberately slow model: bounded backlog, counted drops.

The model is slowed by real work, not a sleep: at threshold 1.0 it speaks after every frame
and decodes max_new_tokens tokens each time, far slower than 30 frames a second on a CPU. The
node is asked to use every frame (fps 30), so the engine's bounded queues must drop the oldest
frames. The flood is bounded (150 frames, about 5 s) and stays on loopback.
"""

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import pytest
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter

from live_ros.srv import Ask
from node_helpers import Camera, diagnostics_of, start_node

pytestmark = pytest.mark.slow  # a minute or more


FLOOD_FRAMES = 150
CAMERA_PERIOD_NS = 33_333_333  # 30 Hz
QUEUE_SIZE = 2
ENGINE_BATCH = 4  # StreamPipeline's default encoder batch
#: Frames that can be between the camera and the model at once: two bounded queues, one
#: encoder batch, the frame being decoded.
MAX_WAITING = 2 * QUEUE_SIZE + ENGINE_BATCH + 1


def _int(values, key):
    return int(values[key])


def test_flood_keeps_the_backlog_bounded_and_counts_drops(node_model, client):
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    params = ('fps:=30.0', 'response_threshold:=1.0', 'max_new_tokens:=64',
              f'queue_size:={QUEUE_SIZE}', 'publish_partial:=false', 'diagnostics_period:=0.2')
    with start_node(node_model, *params) as node:
        camera = Camera(client)
        camera.wait_for_node()
        ask = client.node.create_client(Ask, 'ask')
        client.spin_until(ask.service_is_ready, what='the ask service')
        replies = []
        for index in range(FLOOD_FRAMES):
            camera.publish(period_ns=CAMERA_PERIOD_NS)
            if index == FLOOD_FRAMES // 2:
                # Services are served while images pour in (separate callback groups).
                replies.append(ask.call_async(Ask.Request(query='What is happening?')))
            client.spin_for(CAMERA_PERIOD_NS * 1e-9)
        reply = client.spin_until(lambda: replies[0].done() and replies[0].result(),
                                  what='the ask reply during the flood')
        assert reply.accepted, reply.message

        # The model catches up once the camera stops: nothing left waiting, the newest frame
        # was kept and decoded (lag behind the camera back to 0), every frame accounted for.
        settled = client.spin_until(
            lambda: (lambda v: v if v and v['backlog'] == '0' and v['stream_lag_s'] == '0.000'
                     else None)(diagnostics_of(diagnostics)),
            timeout=120.0, what='the engine to drain its queues')
        assert node.proc.poll() is None, node.output()
        # Every report from the first frame to the drained queues: drops are counted when the
        # encoder evicts a frame, which on a busy machine may come after the reply above.
        during = [diagnostics_of([array]) for array in diagnostics]
        result = client.call(SetParameters, '/live_node/set_parameters', SetParameters.Request(
            parameters=[Parameter('response_threshold', value=0.5).to_parameter_msg()]))
        assert result.results[0].successful

    received = _int(settled, 'images_received')
    assert 0 < received <= FLOOD_FRAMES
    assert _int(settled, 'frames_received') == received  # fps 30: every frame is due
    dropped, used = _int(settled, 'frames_dropped'), _int(settled, 'frames_decoded')
    assert dropped > 0, settled
    assert used + dropped == received, settled
    assert used < received
    assert _int(settled, 'max_backlog') <= MAX_WAITING, settled
    assert all(_int(values, 'backlog') <= MAX_WAITING for values in during if values)
    assert any(values['_level'] == DiagnosticStatus.WARN and 'falls behind' in values['_message']
               for values in during if values), 'no WARN while frames were dropped'
    assert _int(settled, 'errors') == 0, settled['last_error']
