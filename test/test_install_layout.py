"""The colcon-installed package looks the way a ROS 2 user expects.

`ros2 run live_ros <node>` needs lib/live_ros/<node>, `ros2 launch live_ros ...` needs
share/live_ros/launch, nodes find their parameters in share/live_ros/config, and the generated
interfaces must sit in the same Python package as the hand-written sources. These are checked
on the real install/ tree that scripts/setup.sh builds.
"""

import ast
import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from ros_helpers import EXECUTABLE_DIR, INSTALL_PREFIX, INSTALL_SITE_PACKAGES, REPO_ROOT
from ros_helpers import start_python

EXECUTABLES = {
    'live_node': 'live_ros.ros.live_node',
    'video_publisher': 'live_ros.ros.video_publisher',
    'ask': 'live_ros.ros.ask',
    'train': 'live_ros.cli.train',
    'infer': 'live_ros.cli.infer',
}
SHARE = INSTALL_PREFIX / 'share' / 'live_ros'
INDEX = INSTALL_PREFIX / 'share' / 'ament_index' / 'resource_index'


@pytest.mark.parametrize('name', sorted(EXECUTABLES))
def test_executables_in_lib_package_dir(ros_install, name):
    path = EXECUTABLE_DIR / name
    assert path.is_file(), f'{path} missing'
    assert os.access(path, os.X_OK), f'{path} is not executable'
    first, *rest = path.read_text().splitlines()
    interpreter = first[2:]
    assert first.startswith('#!') and os.access(interpreter, os.X_OK), first
    module = EXECUTABLES[name]
    assert f'from {module} import main' in rest


def console_scripts():
    """Return setup.py's console scripts as {name: module}: pip's CLI names."""
    tree = ast.parse((REPO_ROOT / 'setup.py').read_text())
    entries = next(node for node in ast.walk(tree)
                   if isinstance(node, ast.Dict) and any(
                       isinstance(key, ast.Constant) and key.value == 'console_scripts'
                       for key in node.keys))
    scripts = ast.literal_eval(entries.values[0])
    return {name.strip(): target.split(':')[0].strip()
            for name, target in (line.split('=') for line in scripts)}


def test_colcon_install_has_the_pip_commands_on_path(ros_install):
    # The README set-up is colcon's: live-infer, live-eval, ... must work in that shell too,
    # not only after `pip install .`. install/live_ros/bin is what setup.bash puts on PATH.
    commands = console_scripts()
    assert {'live-infer', 'live-train', 'live-eval', 'live-bench'} <= set(commands)
    for name, module in commands.items():
        path = INSTALL_PREFIX / 'bin' / name
        assert path.is_file() and os.access(path, os.X_OK), f'{path} missing'
        assert f'from {module} import main' in path.read_text().splitlines()
    found = subprocess.run(
        ['bash', '-c', 'source scripts/env.sh >/dev/null && command -v ' + ' '.join(commands)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(INSTALL_PREFIX / 'bin' / name) for name in commands]


def test_share_has_launch_config_package_xml_and_interfaces(ros_install):
    for folder in ('launch', 'config'):
        assert (SHARE / folder).is_dir(), f'share/live_ros/{folder} missing'
    for source in list((REPO_ROOT / 'launch').glob('*.py')) + \
            list((REPO_ROOT / 'config').rglob('*.yaml')):
        installed = SHARE / source.relative_to(REPO_ROOT)
        assert installed.is_file(), f'{installed} missing (rebuild with scripts/setup.sh)'
    package = ET.parse(SHARE / 'package.xml').getroot()
    assert package.get('format') == '3'
    assert package.findtext('name') == 'live_ros'
    assert package.findtext('member_of_group') == 'rosidl_interface_packages'
    assert (SHARE / 'msg' / 'Response.msg').is_file()
    assert (SHARE / 'srv' / 'Ask.srv').is_file()


def test_ament_index_registers_package_and_interfaces(ros_install):
    assert (INDEX / 'packages' / 'live_ros').is_file()
    interfaces = (INDEX / 'rosidl_interfaces' / 'live_ros').read_text().split()
    assert 'msg/Response.msg' in interfaces
    assert 'srv/Ask.srv' in interfaces
    assert 'action/Ask.action' in interfaces


def test_installed_python_package_matches_sources(ros_install):
    installed = INSTALL_SITE_PACKAGES / 'live_ros'
    missing = [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / 'live_ros').rglob('*.py')
               if not (installed / p.relative_to(REPO_ROOT / 'live_ros')).is_file()]
    assert not missing, f'not installed (rebuild with scripts/setup.sh): {missing}'


CHECK_IMPORTS = r"""
import importlib.util
import json
import sys

from ament_index_python.packages import get_package_share_directory
import live_ros
from live_ros.msg import Response
from live_ros.srv import Ask

modules = json.loads(sys.argv[1])
print('RESULT ' + json.dumps(dict(
    package_file=live_ros.__file__,
    version=live_ros.__version__,
    response_fields=sorted(Response.get_fields_and_field_types()),
    ask_request_fields=sorted(Ask.Request.get_fields_and_field_types()),
    ask_response_fields=sorted(Ask.Response.get_fields_and_field_types()),
    found={m: importlib.util.find_spec(m) is not None for m in modules},
    share=get_package_share_directory('live_ros'),
)))
"""


def test_one_interpreter_sees_generated_and_handwritten_modules(ros_install, tmp_path):
    # Run outside the checkout so only the installed tree can satisfy the imports.
    modules = [m for m in EXECUTABLES.values()
               if (REPO_ROOT / (m.replace('.', '/') + '.py')).is_file()]
    modules.append('live_ros.ros')
    child = start_python(['-c', CHECK_IMPORTS, json.dumps(modules)], cwd=tmp_path, name='check')
    assert child.wait() == 0, child.output()
    result = json.loads(child.wait_for_line(r'^RESULT (.*)$').group(1))
    assert result['package_file'].startswith(str(INSTALL_SITE_PACKAGES))
    assert result['version']
    assert result['response_fields'] == sorted(
        ['header', 'text', 'stream_time', 'query_id', 'partial', 'cut'])
    assert result['ask_request_fields'] == ['client', 'query']
    assert result['ask_response_fields'] == ['accepted', 'message', 'query_id']
    assert all(result['found'].values()), result['found']
    assert result['share'] == str(SHARE)


def test_package_xml_is_valid_and_versions_agree():
    import warnings

    from catkin_pkg.package import parse_package

    with warnings.catch_warnings():
        warnings.simplefilter('error')
        package = parse_package(str(REPO_ROOT))
        package.validate()
    assert package.package_format == 3
    assert package.get_build_type() == 'ament_cmake'
    exec_depends = {d.name for d in package.exec_depends}
    assert {'rclpy', 'sensor_msgs', 'std_msgs', 'std_srvs', 'diagnostic_msgs',
            'builtin_interfaces', 'cv_bridge', 'launch_ros', 'rosidl_default_runtime'} \
        <= exec_depends
    assert 'rosidl_default_generators' in {d.name for d in package.buildtool_depends}
    setup_py = (REPO_ROOT / 'setup.py').read_text()
    init_py = (REPO_ROOT / 'live_ros' / '__init__.py').read_text()
    assert f"version='{package.version}'" in setup_py
    assert f"__version__ = '{package.version}'" in init_py


# Test-runner plugins that some machines add to every environment; nothing of ours uses them.
NOT_OURS = {'coverage', 'pytest-cov', 'pytest-repeat', 'pytest-rerunfailures'}


def test_every_installed_package_is_pinned():
    # A package installed by hand makes tests pass (or skip) here and fail on a fresh machine.
    import importlib.metadata
    import re

    def norm(name):
        return re.sub(r'[-_.]+', '-', name).lower()

    pins = {}
    for line in (REPO_ROOT / 'requirements' / 'constraints.txt').read_text().splitlines():
        if line.strip() and not line.startswith('#'):
            name, version = line.split('==')
            pins[norm(name)] = version.strip()
    unpinned = []
    for dist in importlib.metadata.distributions():
        name = norm(dist.metadata['Name'])
        if str(getattr(dist, '_path', '')).endswith('.egg-info'):
            continue  # metadata of the ROS packages inside the ros-* wheels
        if name in {'pip', 'live-ros-core'} | NOT_OURS:
            continue
        if pins.get(name) != dist.version.split('+')[0]:
            unpinned.append(f'{name}=={dist.version} (pinned: {pins.get(name)})')
    assert not unpinned, 'add to requirements/*.txt and constraints.txt: ' + ', '.join(unpinned)
