"""ROS 2 Python style for all our code: PEP 8, 99 columns, single quotes, pep257 docstrings.

ruff reads its rules from pyproject.toml: the pycodestyle, pyflakes, flake8-quotes and
pydocstyle checks that ament_flake8 / ament_pep257 apply in a ROS 2 workspace.
"""

import subprocess
import sys

from ros_helpers import REPO_ROOT


def lint_targets():
    """List what exists of our Python sources: folders may still be empty early on."""
    paths = [p for p in ('live_ros', 'test', 'launch', 'setup.py') if (REPO_ROOT / p).exists()]
    paths += sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / 'scripts').glob('*.py'))
    return paths


def ruff(*args):
    return subprocess.run([sys.executable, '-m', 'ruff', 'check', *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_ruff():
    result = ruff(*lint_targets())
    assert result.returncode == 0, result.stdout + result.stderr


#: The engine's seams: what another backend, template, context policy or streamer plugs into.
#: Their public functions carry type hints (ruff's annotation rules, checked here only: a
#: per-file rule selection is not something pyproject.toml can say).
SEAMS = ('live_ros/streaming/backend.py', 'live_ros/model/template.py',
         'live_ros/streaming/context.py', 'live_ros/streaming/streamer.py',
         'live_ros/streaming/response.py', 'live_ros/streaming/fair_lock.py',
         'live_ros/streaming/token_choice.py', 'live_ros/streaming/engine_stats.py',
         'live_ros/streaming/camera_rows.py')


def test_the_engine_seams_are_typed():
    result = ruff('--select', 'ANN001,ANN002,ANN003,ANN201,ANN206', *SEAMS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_style_rules_are_active(tmp_path):
    """A file breaking each rule is flagged: the configuration is the one in pyproject.toml."""
    bad = tmp_path / 'bad.py'
    bad.write_text('def f():\n    """no capital, no full stop"""\n    return "double"  # '
                   + 'x' * 90 + '\n')
    result = ruff('--config', str(REPO_ROOT / 'pyproject.toml'), '--no-cache', str(bad))
    for code in ('Q000', 'E501', 'D400', 'D403'):
        assert code in result.stdout, (code, result.stdout)
