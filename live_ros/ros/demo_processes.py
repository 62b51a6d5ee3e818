"""The demo's process supervisor: live_node and video_publisher as child processes.

Each child gets the project's ROS network rule (LOCALHOST discovery, the demo's domain id), its
output goes to a log file and is watched for a line, and stop() ends it like Ctrl-C would;
a child never outlives the demo, even one killed with SIGKILL.
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from live_ros.ros.domain_id import pick_domain_id

PR_SET_PDEATHSIG = 1   # linux/prctl.h


def ros_env(domain_id=None):
    """Return this process's environment with the project's ROS network rule applied."""
    env = dict(os.environ)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    elif not env.get('ROS_DOMAIN_ID', '').isdigit():
        env['ROS_DOMAIN_ID'] = str(pick_domain_id())
    env['PYTHONUNBUFFERED'] = '1'
    env.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 2))
    return env


def executable(name):
    """Command for one of our ROS executables: the installed one if built, else ``-m``.

    Both run the same module with this interpreter; the installed script is what ``ros2 run
    live_ros <name>`` would start on a ROS system.
    """
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        exe = Path(prefix) / 'lib' / 'live_ros' / name
        if prefix and exe.is_file() and os.access(exe, os.X_OK):
            return [str(exe)]
    return [sys.executable, '-m', f'live_ros.ros.{name}']


def _die_with_parent():
    """In the child before exec: SIGTERM it when the demo dies, even by SIGKILL.

    The children run in sessions of their own (a terminal's Ctrl-C reaches the demo, which
    stops them in order), so nothing else would end them if the demo were killed.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):   # not Linux: stop() is the only way
        pass


class Child:
    """A started ROS process whose output goes to a log file and is scanned for lines."""

    def __init__(self, name, cmd, env, log_dir):
        self.name = name
        self.lines = []
        self.log_path = Path(log_dir) / f'{name}.log'
        self._log = open(self.log_path, 'w', encoding='utf-8')
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip('\n'))
            self._log.write(line)
            self._log.flush()

    def wait_line(self, needle, timeout):
        """Wait until a line contains ``needle``; False on timeout or when the process ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)
                return any(needle in line for line in self.lines)
            time.sleep(0.1)
        return False

    def tail(self, n=15):
        """Return the last lines of output (for error messages)."""
        return '\n'.join(self.lines[-n:])

    def stop(self, timeout=10.0):
        """Stop with SIGINT (clean rclpy shutdown), then SIGTERM, then SIGKILL."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0),
                          (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        self._reader.join(2.0)
        self._log.close()
        return self.proc.returncode
