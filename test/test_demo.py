"""The newcomer demo in its short form: real live_node + video_publisher over DDS.

Asserts what a newcomer must see: responses printed with their stream time as the model
speaks on its own, the question asked through the ``ask`` service and its answer, and the
closing summary. It runs the embedded default model when it is trained and its backbones are
built; otherwise a tiny random model stands in (the plumbing is the same, the words are not).
"""

import os
import re
from pathlib import Path

import pytest
import ros_helpers
from live_ros.testing import tiny_models

pytestmark = pytest.mark.slow  # a minute or more

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / 'live_ros' / 'models' / 'default'


def _default_model_usable():
    from live_ros.model import backbones
    return (DEFAULT_MODEL / 'live_config.json').is_file() and all(
        backbones.is_built(n) for n in ('smollm2-135m-instruct', 'dinov2-small'))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    """Use the embedded default model, or a tiny random one when it is not available."""
    if _default_model_usable():
        return str(DEFAULT_MODEL)
    root = tmp_path_factory.mktemp('demo')
    model, _ = tiny_models.build_tiny_live_model(root)
    return model.save_pretrained(str(root / 'model'))


def test_short_demo_prints_responses_and_answer(model_dir, tmp_path):
    """Run ``python -m live_ros.ros.demo --short`` and read what it printed."""
    ros_helpers.require_install()
    env = ros_helpers.ros_env()
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), env.get('PYTHONPATH', '')])
    args = ['-m', 'live_ros.ros.demo', '--short', '--model', model_dir,
            '--log-dir', str(tmp_path / 'logs'), '--domain-id', env['ROS_DOMAIN_ID']]
    with ros_helpers.start_python(args, env=env, cwd=str(REPO), name='demo') as demo:
        code = demo.wait(timeout=600)
        out = demo.output()
    assert code == 0, out
    spoken = re.findall(r'^\[\s*([\d.]+) s\] assistant: (.+)$', out, re.M)
    assert spoken, out
    # the synthetic world knows the truth: every line is marked, the summary counts the marks
    marked = r' (✓|✗ \(at world [\d.]+ s the truth: .+\))$'
    assert all(re.search(marked, text) for _, text in spoken), out
    assert re.search(r'fact accuracy +\d+ of \d+ lines right', out), out
    assert re.search(r'^\[\s*[\d.]+ s\] user asks: .+$', out, re.M), out
    assert re.search(r'^\[\s*[\d.]+ s\] answer \(our question\): .+$', out, re.M), out
    assert '[demo] summary' in out and 'frames/s' in out, out
    node_log = (tmp_path / 'logs' / 'live_node.log').read_text()
    if model_dir == str(DEFAULT_MODEL):
        # a newcomer is told once, at start, what the embedded default is (and is not)
        assert node_log.count('the embedded default is a small demo model') == 1, node_log
