"""live_node as a managed (lifecycle) node, driven over DDS as `ros2 lifecycle set` does.

configure loads the model, activate streams, deactivate pauses with the context kept, cleanup
frees the model, shutdown ends the process; with autostart (test_node) all in one command.
"""

from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_helpers import start_executable

from live_ros.msg import Response
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.srv import Ask
from node_helpers import Camera, diagnostics_of



def start_managed_node(model_dir, *params):
    """Start live_node with autostart false; wait until it waits for a transition."""
    args = ['--ros-args', '-p', f'model:={model_dir}', '-p', 'device:=cpu',
            '-p', 'autostart:=false', '-p', 'diagnostics_period:=0.2']
    for param in params:
        args += ['-p', param]
    return start_executable('live_node', args, ready=r'waiting for a lifecycle transition')


def state(ros):
    """Return the node's lifecycle state label (ros2 lifecycle get)."""
    return ros.call(GetState, '/live_node/get_state', GetState.Request()).current_state.label


def transition(ros, transition_id):
    """Ask for a transition; return whether it succeeded (ros2 lifecycle set)."""
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return ros.call(ChangeState, '/live_node/change_state', request, timeout=60.0).success


def fresh(ros, diagnostics):
    """Return the newest /diagnostics values published after this call."""
    diagnostics.clear()
    return ros.spin_until(lambda: diagnostics_of(diagnostics), what='a new /diagnostics')


def test_configure_activate_pause_resume_cleanup_shutdown(node_model, client):
    responses = client.subscribe(Response, 'response', RESPONSE_QOS)
    diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
    with start_managed_node(node_model, 'max_new_tokens:=3') as node:
        assert state(client) == 'unconfigured'
        refused = client.call(Ask, 'ask', Ask.Request(query='Anyone there?'))
        assert not refused.accepted and 'unconfigured' in refused.message
        assert fresh(client, diagnostics)['lifecycle_state'] == 'unconfigured'

        assert transition(client, Transition.TRANSITION_CONFIGURE)
        assert state(client) == 'inactive'
        camera = Camera(client)
        camera.wait_for_node()
        camera.publish_counted(diagnostics, 'images_ignored_inactive')   # ignored, counted
        assert fresh(client, diagnostics)['frames_decoded'] == '0'
        refused = client.call(Ask, 'ask', Ask.Request(query='Anyone there?'))
        assert not refused.accepted and 'inactive' in refused.message

        assert transition(client, Transition.TRANSITION_ACTIVATE)
        assert state(client) == 'active'
        for _ in range(2):
            camera.publish_used(diagnostics)
        before = int(fresh(client, diagnostics)['cache_tokens'])
        assert before > 0

        # Pause: the context stays, frames are ignored; resume goes on from there.
        assert transition(client, Transition.TRANSITION_DEACTIVATE)
        assert state(client) == 'inactive'
        camera.publish_counted(diagnostics, 'images_ignored_inactive')   # a frame while paused
        paused = fresh(client, diagnostics)
        assert int(paused['cache_tokens']) == before
        assert transition(client, Transition.TRANSITION_ACTIVATE)
        camera.publish_used(diagnostics)
        assert int(fresh(client, diagnostics)['cache_tokens']) > before
        reply = client.call(Ask, 'ask', Ask.Request(query='What am I doing?'))
        assert reply.accepted, reply.message
        client.spin_until(lambda: any(r.query_id == reply.query_id for r in responses),
                          what='the answer after resuming')

        # Cleanup frees the model; a new configure would start a new stream.
        assert transition(client, Transition.TRANSITION_DEACTIVATE)
        assert transition(client, Transition.TRANSITION_CLEANUP)
        assert state(client) == 'unconfigured'
        assert fresh(client, diagnostics)['cache_tokens'] == '0'
        assert not transition(client, Transition.TRANSITION_ACTIVATE)  # not from unconfigured

        # Shutdown ends the process cleanly, as a lifecycle manager expects.
        assert transition(client, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert node.wait(timeout=10.0) == 0, node.output()
    assert 'Traceback' not in node.output(), node.output()
    assert 'stopped, no thread left' in node.output(), node.output()


def test_configure_with_a_bad_model_fails_and_the_node_stays_up(ros_install, client, tmp_path):
    with start_managed_node(tmp_path / 'missing') as node:
        assert not transition(client, Transition.TRANSITION_CONFIGURE)
        assert state(client) == 'unconfigured'
        errors = [line for line in node.output().splitlines() if 'configure failed' in line]
        assert errors and errors[0].startswith('[ERROR]') and 'cannot load model' in errors[0]
        assert node.proc.poll() is None, node.output()
        assert node.stop() == 0, node.output()
