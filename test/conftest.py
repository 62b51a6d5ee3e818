"""Test session set-up shared by every test file.

Applies the ROS network rule to this process too (in-process rclpy reads it at init) when
pytest was started without scripts/test.sh, and puts the colcon-installed live_ros (generated
msg/srv) on sys.path so `from live_ros.msg import Response` works from a checkout. ROS parts are
never optional here: if the build is missing, ROS tests fail with a message saying how to fix it.
"""

import os
import sys
from pathlib import Path

import pytest

TEST_DIR = Path(__file__).resolve().parent
if str(TEST_DIR) not in sys.path:
    sys.path.insert(0, str(TEST_DIR))

import ros_helpers  # noqa: E402  (needs TEST_DIR on sys.path)

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(ros_helpers.run_domain_id()))

if ros_helpers.INSTALL_SITE_PACKAGES.is_dir() and \
        str(ros_helpers.INSTALL_SITE_PACKAGES) not in sys.path:
    sys.path.append(str(ros_helpers.INSTALL_SITE_PACKAGES))


def pytest_report_header(config):
    """Show which ROS network set-up this run uses, so a log tells whether it was isolated."""
    netns = os.environ.get('LIVE_ROS_NETNS', 'unknown (not started by scripts/test.sh)')
    return (f'ROS_DOMAIN_ID={os.environ["ROS_DOMAIN_ID"]} '
            f'ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"]} '
            f'loopback-only netns={netns}')


@pytest.fixture(scope='session')
def ros_install():
    """Guarantee the colcon build is there (fails loudly otherwise); returns its prefix."""
    ros_helpers.require_install()
    return ros_helpers.INSTALL_PREFIX


@pytest.fixture(scope='session')
def node_model(tmp_path_factory, ros_install):
    """One steered tiny model directory for every node test of the session."""
    from node_helpers import save_node_model
    return save_node_model(tmp_path_factory.mktemp('live_node_model'))


@pytest.fixture
def client(ros_install):
    """Give the test an rclpy client node (its own context), closed afterwards."""
    from node_helpers import RosClient
    client = RosClient()
    yield client
    client.close()


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs the ROS build (directly or through a fixture) ``ros``."""
    for item in items:
        if 'ros_install' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.ros)

