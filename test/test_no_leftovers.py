"""No process of ours outlives whoever started it, even when that one is killed.

A test run stopped by a CI time-out (SIGTERM) kills the processes its tests started; the
demo's live_node and video_publisher end when the demo is killed with SIGKILL. Real
processes, real signals.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from ros_helpers import REPO_ROOT as REPO, wait_for

SLEEPER = [sys.executable, '-c', 'import time; time.sleep(120)']


def _alive(pid):
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ('Z', 'X')   # a zombie is dead (its reaper may be slow)


def _start(code):
    """Start ``code`` in Python with test/ and the repo importable; its first line is a pid."""
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO / 'test'), str(REPO)])}
    proc = subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE,
                            text=True)
    return proc, int(proc.stdout.readline())


def test_a_test_run_sent_sigterm_kills_the_processes_it_started():
    proc, child = _start(f"""
import os, sys, time
import ros_helpers
sleeper = ros_helpers.start_python({SLEEPER[1:]!r}, env=dict(os.environ), name='sleeper')
print(sleeper.proc.pid, flush=True)
time.sleep(120)
""")
    try:
        assert _alive(child)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM   # it still dies of the signal
        wait_for(lambda: not _alive(child), timeout=10, what='the started process to end')
    finally:
        proc.kill()
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_demos_children_end_when_the_demo_is_killed(tmp_path):
    proc, child = _start(f"""
import os, time
from live_ros.ros.demo_processes import Child
child = Child('sleeper', {SLEEPER!r}, dict(os.environ), {str(tmp_path)!r})
print(child.proc.pid, flush=True)
time.sleep(120)
""")
    try:
        assert _alive(child)
        proc.kill()   # SIGKILL: the demo gets no chance to stop its children
        proc.wait(timeout=30)
        wait_for(lambda: not _alive(child), timeout=10, what="the demo's child to end")
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)
