"""`pip install .` gives ML users the ROS-free part of live_ros, with its console scripts.

Builds the real wheel from a copy of the sources (setuptools would otherwise write into the
checkout's build/, which is colcon's) and installs it into a scratch prefix without touching
the project venv.
"""

import shutil
import subprocess
import sys
import zipfile

from ros_helpers import REPO_ROOT

CONSOLE_SCRIPTS = {
    'live-infer': 'live_ros.cli.infer:main',
    'live-train': 'live_ros.cli.train:main',
    'live-eval': 'live_ros.cli.evaluate:main',
    'live-bench': 'live_ros.cli.bench:main',
    'live-backbones': 'live_ros.model.backbones:main',
}


def pip(*args, cwd):
    result = subprocess.run(
        [sys.executable, '-m', 'pip', *args, '--no-deps', '--no-build-isolation',
         '--no-index', '--disable-pip-version-check', '--quiet'],
        cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_is_ros_free_and_declares_console_scripts(tmp_path):
    source = tmp_path / 'src'
    source.mkdir()
    for name in ('setup.py', 'pyproject.toml', 'README.md'):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / 'live_ros', source / 'live_ros',
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    pip('wheel', '.', '-w', str(tmp_path / 'dist'), cwd=source)
    wheel, = (tmp_path / 'dist').glob('*.whl')
    assert wheel.name.startswith('live_ros_core-')

    names = zipfile.ZipFile(wheel).namelist()
    assert 'live_ros/__init__.py' in names
    ros_only = ('live_ros/ros/', 'live_ros/msg/', 'live_ros/srv/')
    assert not [n for n in names if n.startswith(ros_only)]
    sources = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / 'live_ros').rglob('*.py')}
    sources = {s for s in sources if not s.startswith(ros_only)}
    assert sources <= set(names), sorted(sources - set(names))
    for data in (REPO_ROOT / 'live_ros' / 'models' / 'default').rglob('*'):
        if data.is_file():
            assert str(data.relative_to(REPO_ROOT)) in names

    prefix = tmp_path / 'prefix'
    pip('install', '--prefix', str(prefix), str(wheel), cwd=tmp_path)
    for script, target in CONSOLE_SCRIPTS.items():
        text = (prefix / 'bin' / script).read_text()
        module, function = target.split(':')
        assert f'from {module} import {function}' in text, text
