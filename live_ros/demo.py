"""The newcomer demo (README command 1): LIVE on real ROS 2 processes, watching a stream.

``bash scripts/demo.sh`` sets everything up, then runs this driver, which starts

- ``live_node`` on the embedded default model (live_ros/models/default),
- ``video_publisher`` playing the synthetic world (or a video file / ``camera:<index>`` given
  as the argument),

as separate processes talking over DDS on this machine only (ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST, its own ROS_DOMAIN_ID; scripts/demo.sh adds a loopback-only network namespace when
it may). The driver is itself a small ROS node: at the first frame it asks the model (through
the ``ask`` service) to narrate, as in the training dialogues; it prints every response with
its stream time as the model speaks on its own, asks a question at about 20 s of stream time
and prints the answer, and after about a minute stops everything and prints a summary
(frames, responses, frames per second, lag). ``--forever`` runs until Ctrl-C; ``--short`` is
the quick form the test uses.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from live_ros.config import resolve_model_path

DEFAULT_SOURCE = 'synthetic:200007'  # a held-out (test split) seed of the synthetic world
DEFAULT_QUESTION = 'How many shapes are there?'
DEFAULT_INSTRUCTION = 'Narrate what happens in real time.'
LOG_DIR = Path('runs') / 'demo'


def ros_env(domain_id=None):
    """Return this process's environment with the project's ROS network rule applied."""
    env = dict(os.environ)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    elif not env.get('ROS_DOMAIN_ID', '').isdigit():
        env['ROS_DOMAIN_ID'] = str(os.getpid() % 101 + 1)
    env['PYTHONUNBUFFERED'] = '1'
    env.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 2))
    return env


def _executable(name):
    """Command for one of our ROS executables: the installed one if built, else ``-m``.

    Both run the same module with this interpreter; the installed script is what ``ros2 run
    live_ros <name>`` would start on a ROS system.
    """
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        exe = Path(prefix) / 'lib' / 'live_ros' / name
        if prefix and exe.is_file() and os.access(exe, os.X_OK):
            return [str(exe)]
    return [sys.executable, '-m', f'live_ros.ros.{name}']


class Child:
    """A started ROS process whose output goes to a log file and is scanned for lines."""

    def __init__(self, name, cmd, env, log_dir):
        self.name = name
        self.lines = []
        self.log_path = Path(log_dir) / f'{name}.log'
        self._log = open(self.log_path, 'w', encoding='utf-8')
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
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


class DemoClient:
    """The demo's own ROS node: prints responses, asks the question, reads diagnostics."""

    def __init__(self, question, ask_at, out=print, instruction=None):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from live_ros.msg import Response
        from live_ros.ros.live_node import RESPONSE_QOS
        from live_ros.srv import Ask

        self.rclpy = rclpy
        self.node = rclpy.create_node('live_demo')
        self.out = out
        self.question, self.ask_at = question, ask_at
        self.instruction = instruction
        self._instruction_future = None
        self.instruction_id = None
        self.first_stamp = self.last_stamp = None
        self.first_wall = None
        self.frames_seen = 0
        self.responses = []  # (stream_time, text, wall delay from frame to print)
        self.answers = []
        self.query_id = None
        self.asked_wall = None
        self.diagnostics = {}
        self._future = None
        self.client = self.node.create_client(Ask, 'ask')
        self.node.create_subscription(Response, 'response', self.on_response, RESPONSE_QOS)
        self.node.create_subscription(Image, 'image', self.on_image, qos_profile_sensor_data)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diagnostics, 10)

    @property
    def stream_time(self):
        """Seconds of stream seen so far (from the images' stamps)."""
        if self.first_stamp is None:
            return 0.0
        return self.last_stamp - self.first_stamp

    def on_image(self, msg):
        """Track the stream's clock from the camera stamps the model also uses."""
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if self.first_stamp is None:
            self.first_stamp, self.first_wall = stamp, time.monotonic()
        self.last_stamp = max(stamp, self.last_stamp or stamp)
        self.frames_seen += 1

    def on_response(self, msg):
        """Print a finished response with its stream time."""
        now = self.node.get_clock().now().nanoseconds * 1e-9
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        delay = now - stamp if stamp > 0 else None
        if msg.query_id == 0:
            self.responses.append((msg.stream_time, msg.text, delay))
            self.out(f'[{msg.stream_time:6.1f} s] assistant: {msg.text}')
        else:
            self.answers.append((msg.query_id, msg.stream_time, msg.text, delay))
            if msg.query_id == self.query_id:
                self.out(f'[{msg.stream_time:6.1f} s] answer (our question): {msg.text}')
            else:
                self.out(f'[{msg.stream_time:6.1f} s] reply: {msg.text}')

    def on_diagnostics(self, msg):
        """Keep the node's latest stream statistics for the summary."""
        for status in msg.status:
            if status.name.endswith(': stream'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def maybe_ask(self):
        """Give the opening instruction at the first frame, then ask at ``ask_at`` seconds."""
        from live_ros.srv import Ask
        if self.first_stamp is None or not self.client.service_is_ready():
            return
        if self.instruction and self._instruction_future is None:
            self.out(f'[{self.stream_time:6.1f} s] user: {self.instruction}')
            self._instruction_future = self.client.call_async(Ask.Request(query=self.instruction))
        if self._future is None and self.stream_time >= self.ask_at:
            self.out(f'[{self.stream_time:6.1f} s] user asks: {self.question}')
            self.asked_wall = time.monotonic()
            self._future = self.client.call_async(Ask.Request(query=self.question))
        if self._instruction_future is not None and self._instruction_future.done() \
                and self.instruction_id is None:
            reply = self._instruction_future.result()
            self.instruction_id = reply.query_id if reply is not None and reply.accepted else -1
        if self._future is not None and self._future.done() and self.query_id is None:
            reply = self._future.result()
            if reply is None or not reply.accepted:
                self.out(f'[demo] question refused: {getattr(reply, "message", "no reply")}')
                self.query_id = -1
            else:
                self.query_id = reply.query_id

    @property
    def answered(self):
        """True once the answer to our question has been printed."""
        return self.query_id is not None and any(
            a[0] == self.query_id for a in self.answers)

    def spin_once(self, timeout=0.1):
        """Process callbacks for up to ``timeout`` seconds."""
        self.rclpy.spin_once(self.node, timeout_sec=timeout)

    def close(self):
        """Destroy the node."""
        self.node.destroy_node()


def summary(client, wall):
    """Return the closing lines: frames, responses, fps, lag."""
    d = client.diagnostics
    used = int(d.get('frames_used') or 0)
    fps = used / wall if wall > 0 else 0.0
    delays = [r[2] for r in client.responses if r[2] is not None]
    lines = [
        '[demo] summary',
        f'[demo]   stream time      {client.stream_time:.1f} s in {wall:.1f} s wall',
        f'[demo]   frames           {client.frames_seen} published, {used} used by the model'
        f' ({d.get("frames_dropped", "?")} dropped when it fell behind)',
        f'[demo]   responses        {len(client.responses)} on its own, '
        f'{len(client.answers)} answer(s) to questions',
        f'[demo]   model rate       {fps:.2f} frames/s (target {d.get("fps", "2.0")} fps)',
        f'[demo]   lag              {d.get("lag_s", "?")} s behind the newest frame; '
        f'response printed {sum(delays) / len(delays) if delays else 0.0:.2f} s after its '
        'frame on average',
        f'[demo]   cache tokens     {d.get("cache_tokens", "?")} '
        f'(context rebuilds {d.get("context_rebuilds", "?")})',
    ]
    return '\n'.join(lines)


def run(args, out=print):
    """Start the processes, drive the demo, stop everything; return the exit status."""
    model = resolve_model_path(args.model)
    if not Path(model, 'live_config.json').is_file():
        out(f'[demo] no trained model at {model}: run bash scripts/train_default.sh')
        return 2
    env = ros_env(args.domain_id)
    os.environ.update({k: env[k] for k in ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_DOMAIN_ID')})
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    out(f'[demo] ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; '
        f'logs in {log_dir}/')
    node_cmd = _executable('live_node') + [
        '--ros-args', '-p', f'model:={model}', '-p', f'device:={args.device}',
        '-p', 'fps:=2.0', '-p', 'publish_partial:=false']
    children = []
    import rclpy
    rclpy.init()
    client = None
    status = 0
    try:
        out(f'[demo] starting live_node with the embedded default model ({model}) ...')
        node = Child('live_node', node_cmd, env, log_dir)
        children.append(node)
        if not node.wait_line('listening on', args.load_timeout):
            out(f'[demo] live_node did not start:\n{node.tail()}')
            return 1
        out('[demo] live_node is ready; starting video_publisher on ' + args.source)
        pub_cmd = _executable('video_publisher') + [
            '--ros-args', '-p', f'source:={args.source}', '-p', f'fps:={args.publish_fps}',
            '-p', 'loop:=true', '-p', 'wait_for_subscribers:=1']
        children.append(Child('video_publisher', pub_cmd, env, log_dir))
        client = DemoClient(args.question, args.ask_at, out=out,
                            instruction=args.instruction or None)
        start = time.monotonic()
        deadline = None
        while True:
            client.spin_once(0.1)
            client.maybe_ask()
            for child in children:
                if child.proc.poll() is not None:
                    out(f'[demo] {child.name} exited ({child.proc.returncode}):\n'
                        f'{child.tail()}')
                    status = 1
            if status:
                break
            if client.first_stamp is None and time.monotonic() - start > args.load_timeout:
                out('[demo] no frames arrived; see the logs')
                status = 1
                break
            if args.forever:
                continue
            if client.stream_time >= args.seconds and deadline is None:
                deadline = time.monotonic() + args.answer_timeout
            if deadline is not None and (client.answered or client.query_id == -1
                                         or time.monotonic() > deadline):
                break
    except KeyboardInterrupt:
        out('\n[demo] stopped (Ctrl-C)')
    finally:
        if client is not None:
            wall = time.monotonic() - (client.first_wall or time.monotonic())
            # One more diagnostics message so the summary has the final counts.
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                client.spin_once(0.1)
            out(summary(client, wall))
            if client.query_id not in (None, -1) and not client.answered:
                out('[demo] the question was not answered in time')
                status = status or 1
        for child in reversed(children):
            child.stop()
        if client is not None:
            client.close()
        rclpy.try_shutdown()
    return status


def main(argv=None):
    """Command line: ``python -m live_ros.demo [SOURCE] [--forever | --short | ...]``."""
    parser = argparse.ArgumentParser(prog='live-demo', description=__doc__.split('\n')[0])
    parser.add_argument('source', nargs='?', default=DEFAULT_SOURCE,
                        help='synthetic:<seed>, a video file, or camera:<index>')
    parser.add_argument('--model', default=None, help='model dir (default: embedded default)')
    parser.add_argument('--seconds', type=float, default=60.0, help='stream time to run')
    parser.add_argument('--forever', action='store_true', help='run until Ctrl-C')
    parser.add_argument('--short', action='store_true', help='a short run (tests)')
    parser.add_argument('--ask-at', type=float, default=20.0, help='stream time of the question')
    parser.add_argument('--question', default=DEFAULT_QUESTION)
    parser.add_argument('--instruction', default=DEFAULT_INSTRUCTION,
                        help="said at the first frame ('' for none): the model was trained to "
                        'narrate after such a request')
    parser.add_argument('--publish-fps', type=float, default=None,
                        help='publishing rate (default: 2 for the synthetic world, else the '
                        "source's own rate); live_node samples 2 fps either way")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--domain-id', type=int, default=None)
    parser.add_argument('--load-timeout', type=float, default=240.0)
    parser.add_argument('--answer-timeout', type=float, default=60.0)
    parser.add_argument('--log-dir', default=str(LOG_DIR))
    args = parser.parse_args(argv)
    if args.short:
        args.seconds, args.ask_at = min(args.seconds, 16.0), min(args.ask_at, 6.0)
    if args.publish_fps is None:
        args.publish_fps = 2.0 if args.source.startswith('synthetic:') else 0.0
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
