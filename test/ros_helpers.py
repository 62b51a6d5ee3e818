"""Helpers for tests that start real ROS 2 processes (real rclpy over real DDS, no mocks).

Every process started here follows the project's network rule: ROS_AUTOMATIC_DISCOVERY_RANGE
is LOCALHOST and ROS_DOMAIN_ID is this test run's own id (scripts/test.sh picks one per run and
runs pytest in a loopback-only network namespace when it may).

API (import with `from ros_helpers import ...`; test/ is on sys.path under pytest):

    REPO_ROOT, INSTALL_PREFIX, INSTALL_SITE_PACKAGES, INSTALL_LIB_DIR, VENV_PREFIX
    DEFAULT_TIMEOUT                      seconds (20) for discovery / message waits, before
    TIMEOUT_SCALE                        the one load setting (LIVE_ROS_TEST_TIMEOUT_SCALE,
                                         default 3): every wait here is multiplied by it, so a
                                         busy machine is slow, not failing
    run_domain_id() -> int               this run's ROS_DOMAIN_ID (1..101)
    require_install()                    raise with a clear message if the colcon build is missing
    ros_env(domain_id=None, extra=None)  env dict for a child: the venv, the colcon overlay
                                         (PYTHONPATH, LD_LIBRARY_PATH, AMENT_PREFIX_PATH),
                                         LOCALHOST discovery, the run's domain id, unbuffered
    start_python(args, env=None, cwd=None, name=None) -> RosProcess
                                         the venv interpreter with args, e.g. ['-c', code] or
                                         ['-m', 'live_ros.ros.live_node', '--ros-args', ...]
    start_executable(name, args=(), env=None, cwd=None, ready=None, timeout=60) -> RosProcess
                                         install/live_ros/lib/live_ros/<name> (what `ros2 run
                                         live_ros <name>` runs on a ROS system); with `ready`
                                         it waits for that line, stopping the process on failure
    wait_for(predicate, timeout=DEFAULT_TIMEOUT, interval=0.05, what='') -> value
                                         poll until predicate() is truthy; AssertionError naming
                                         `what` on timeout (use instead of fixed sleeps)

    RosProcess (also a context manager that stops the process on exit; each runs in a
    process group of its own, which stop() signals whole, and any group still running when
    the interpreter exits, or when it is sent SIGTERM or SIGHUP, is killed: no node outlives
    the test run):
        .proc, .name, .lines (stdout+stderr lines so far), .output() -> str
        .wait_for_line(regex, timeout=DEFAULT_TIMEOUT) -> re.Match
        .wait(timeout=DEFAULT_TIMEOUT) -> returncode
        .stop(timeout=10.0) -> returncode   SIGINT (clean rclpy shutdown), then SIGTERM, SIGKILL
"""

import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from live_ros.ros.domain_id import pick_domain_id

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_PREFIX = REPO_ROOT / 'install' / 'live_ros'
_PYVER = f'python{sys.version_info.major}.{sys.version_info.minor}'
INSTALL_SITE_PACKAGES = INSTALL_PREFIX / 'lib' / _PYVER / 'site-packages'
INSTALL_LIB_DIR = INSTALL_PREFIX / 'lib'
EXECUTABLE_DIR = INSTALL_LIB_DIR / 'live_ros'
VENV_PREFIX = Path(sys.prefix)
DEFAULT_TIMEOUT = 20.0
TIMEOUT_SCALE = float(os.environ.get('LIVE_ROS_TEST_TIMEOUT_SCALE', '3'))
_RUNNING = set()   # RosProcess objects not stopped yet (killed at interpreter exit)


def run_domain_id():
    """Return this run's ROS_DOMAIN_ID; conftest picks one when pytest runs without test.sh."""
    value = os.environ.get('ROS_DOMAIN_ID', '')
    if value.isdigit():
        return int(value)
    return pick_domain_id()


def require_install():
    """Fail loudly when the colcon build is missing, instead of a confusing ImportError later."""
    if not (INSTALL_SITE_PACKAGES / 'live_ros' / 'msg').is_dir():
        raise RuntimeError(
            f'{INSTALL_PREFIX} has no generated live_ros.msg: run `bash scripts/setup.sh` '
            '(or the whole suite with `bash scripts/test.sh`)')


def _prepend(env, key, *paths):
    parts = [str(p) for p in paths] + [p for p in env.get(key, '').split(os.pathsep) if p]
    seen = []
    for part in parts:
        if part not in seen:
            seen.append(part)
    env[key] = os.pathsep.join(seen)


def ros_env(domain_id=None, extra=None):
    """Build a child's environment as `source install/setup.bash` would, plus our ROS rule."""
    require_install()
    env = dict(os.environ)
    _prepend(env, 'PATH', VENV_PREFIX / 'bin')
    _prepend(env, 'PYTHONPATH', INSTALL_SITE_PACKAGES)
    _prepend(env, 'LD_LIBRARY_PATH', INSTALL_LIB_DIR, VENV_PREFIX / 'lib')
    _prepend(env, 'AMENT_PREFIX_PATH', INSTALL_PREFIX, VENV_PREFIX)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_DOMAIN_ID'] = str(run_domain_id() if domain_id is None else domain_id)
    env['PYTHONUNBUFFERED'] = '1'
    env.setdefault('OMP_NUM_THREADS', '2')
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_for(predicate, timeout=DEFAULT_TIMEOUT, interval=0.05, what='condition'):
    """Poll instead of sleeping a fixed time: DDS discovery takes a variable second or two."""
    timeout *= TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}')
        time.sleep(interval)


class RosProcess:
    """A child process whose output is collected line by line while it runs."""

    def __init__(self, argv, env, cwd=None, name=None):
        self.name = name or Path(argv[0]).name
        self.argv = list(argv)
        self.lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            self.argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        _RUNNING.add(self)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip('\n'))

    def output(self):
        """Return everything printed so far (for assertion messages)."""
        with self._lock:
            return '\n'.join(self.lines)

    def wait_for_line(self, pattern, timeout=DEFAULT_TIMEOUT):
        """Wait until a printed line matches `pattern`; fail with the output if it exits."""
        regex = re.compile(pattern)

        def find():
            with self._lock:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                raise AssertionError(
                    f'{self.name} exited ({self.proc.returncode}) before printing '
                    f'{pattern!r}:\n{self.output()}')
            return None

        try:
            return wait_for(find, timeout, what=f'{self.name} to print {pattern!r}')
        except AssertionError as error:
            raise AssertionError(f'{error}\n--- {self.name} output ---\n{self.output()}')

    def wait(self, timeout=DEFAULT_TIMEOUT):
        """Wait for a normal exit and return the exit code; output is complete afterwards."""
        timeout *= TIMEOUT_SCALE
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f'{self.name} still running after {timeout:.0f} s:\n{self.output()}')
        _RUNNING.discard(self)
        self._reader.join(timeout=5)
        return code

    def stop(self, timeout=10.0):
        """Stop like Ctrl-C does (rclpy shuts down cleanly); escalate only if it hangs.

        The whole process group is signalled, so what the process started goes too.
        """
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.signal_group(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
        self.signal_group(signal.SIGKILL)   # anything of the group left behind
        self._reader.join(timeout=5)
        _RUNNING.discard(self)
        return self.proc.returncode

    def signal_group(self, sig):
        """Send ``sig`` to the process's group (a terminal's Ctrl-C does the same)."""
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


@atexit.register
def _kill_leftovers():
    for process in list(_RUNNING):
        process.signal_group(signal.SIGKILL)


def _terminated(signum, frame):
    """SIGTERM or SIGHUP (a CI time-out, a closed terminal) skip atexit: kill ours first."""
    _kill_leftovers()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) == signal.SIG_DFL:   # not ignored (nohup), not taken
            signal.signal(_sig, _terminated)


def start_python(args, env=None, cwd=None, name=None):
    """Start the venv's interpreter (it sets up the ROS wheels' libraries) with `args`."""
    return RosProcess([sys.executable, *args], env or ros_env(), cwd=cwd, name=name)


def start_executable(name, args=(), env=None, cwd=None, ready=None, timeout=60.0):
    """Start an installed node executable the way `ros2 run live_ros <name>` would.

    ``ready``: a regex to wait for before returning; a start that fails or times out stops
    the process before the error is raised (the caller's ``with`` has not begun yet).
    """
    require_install()
    path = EXECUTABLE_DIR / name
    if not os.access(path, os.X_OK):
        raise RuntimeError(f'{path} is missing or not executable: rebuild with scripts/setup.sh')
    process = RosProcess([str(path), *args], env or ros_env(), cwd=cwd, name=name)
    if ready is not None:
        try:
            process.wait_for_line(ready, timeout=timeout)
        except BaseException:
            process.stop()
            raise
    return process
