"""The ROS network rule's own domain id: a domain some process here uses is never picked.

scripts/env.sh runs live_ros/ros/domain_id.py as a script, tests and the demo import it: one
rule for all of them.
"""

import fcntl
import os
import socket
import subprocess
import sys
from pathlib import Path

from live_ros.ros.domain_id import domain_in_use, pick_domain_id
from ros_helpers import REPO_ROOT

SCRIPT = REPO_ROOT / 'live_ros' / 'ros' / 'domain_id.py'


def test_domain_ids_in_use_on_this_machine_are_skipped():
    # Hold the first unicast port of a free domain, as a Fast DDS participant of it would.
    free = pick_domain_id(seed=40)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 7410 + 250 * free))
        assert domain_in_use(free)
        assert pick_domain_id(seed=free - 1) != free


def test_a_shared_memory_port_counts_while_a_process_holds_its_lock():
    """Fast DDS port files in /dev/shm: a live process locks them, a killed one leaves them."""
    free = pick_domain_id(seed=60)
    port_file = Path(f'/dev/shm/fastdds_port{7410 + 250 * free + 11}')
    try:
        port_file.write_bytes(b'')   # left behind: nobody holds it
        assert not domain_in_use(free)
        with open(port_file) as held:
            fcntl.flock(held, fcntl.LOCK_SH)   # a live participant's port
            assert domain_in_use(free)
    finally:
        port_file.unlink(missing_ok=True)


def test_the_script_env_sh_runs_picks_as_the_module_does():
    free = pick_domain_id(seed=20)
    run = [sys.executable, '-I', str(SCRIPT)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 7410 + 250 * free))
        picked = subprocess.run(run + [str(free - 1)], capture_output=True, text=True,
                                check=True).stdout.strip()
    assert picked.isdigit() and int(picked) != free and 1 <= int(picked) <= 101
    bad = subprocess.run(run + ['--help'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'usage' in bad.stderr


def test_env_sh_sets_a_free_domain_unless_one_is_given():
    env = {k: v for k, v in os.environ.items() if k != 'ROS_DOMAIN_ID'}
    show = f'source {REPO_ROOT}/scripts/env.sh > /dev/null 2>&1; echo "$ROS_DOMAIN_ID"'
    picked = subprocess.run(['bash', '-c', show], env=env, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert picked.isdigit() and 1 <= int(picked) <= 101
    assert not domain_in_use(int(picked))
    given = subprocess.run(['bash', '-c', show], env={**env, 'ROS_DOMAIN_ID': '7'},
                           capture_output=True, text=True, check=True).stdout.strip()
    assert given == '7'
