"""ROS 2 Python style for all our code: PEP 8, 99 columns, single quotes, pep257 docstrings.

flake8 (with flake8-quotes) and pydocstyle read their settings from setup.cfg, the same rules
ament_flake8 / ament_pep257 apply in a ROS 2 workspace.
"""

import subprocess
import sys

from ros_helpers import REPO_ROOT


def lint_targets():
    """List what exists of our Python sources: folders may still be empty early on."""
    paths = [p for p in ('live_ros', 'test', 'launch', 'setup.py') if (REPO_ROOT / p).exists()]
    paths += sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / 'scripts').glob('*.py'))
    return paths


def run(*args):
    return subprocess.run([sys.executable, '-m', *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_flake8_quotes_plugin_is_active():
    version = run('flake8', '--version')
    assert version.returncode == 0, version.stderr
    assert 'flake8-quotes' in version.stdout, 'single-quote rule would not be checked'


def test_flake8():
    result = run('flake8', *lint_targets())
    assert result.returncode == 0, result.stdout + result.stderr


def test_pydocstyle():
    # pydocstyle takes files and folders; launch files are .py without a package, include them.
    result = run('pydocstyle', *lint_targets())
    assert result.returncode == 0, result.stdout + result.stderr
