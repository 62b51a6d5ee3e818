"""The demo's own ROS node: prints responses as they come, asks, reads /diagnostics."""

import time


class DemoClient:
    """The demo's own ROS node: prints responses, asks the question, reads diagnostics."""

    def __init__(self, question, ask_at, out=print, instruction=None, truth=None):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from live_ros.msg import Response
        from live_ros.ros.qos import RESPONSE_QOS
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
        self.diagnostics = {}
        # data.facts.WorldTruth of a synthetic source: each line gets a mark and the truth
        self.truth = truth
        self.marks = []
        self.offsets = []   # node stream time - world time, where they differ
        self._future = None
        self.client = self.node.create_client(Ask, 'ask')
        self.node.create_subscription(Response, 'response', self.on_response, RESPONSE_QOS)
        # reliable, as the demo's publisher: the first frame is the world's time 0
        self.node.create_subscription(Image, 'image', self.on_image, QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
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
        """Print a finished response with its stream time (and its mark on a known world)."""
        now = self.node.get_clock().now().nanoseconds * 1e-9
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        delay = now - stamp if stamp > 0 else None
        if msg.query_id == 0:
            self.responses.append((msg.stream_time, msg.text, delay))
            label = 'assistant'
        else:
            self.answers.append((msg.query_id, msg.stream_time, msg.text, delay))
            label = 'answer (our question)' if msg.query_id == self.query_id else 'reply'
        self.out(f'[{msg.stream_time:6.1f} s] {label}: {msg.text}{self._mark(msg, stamp)}')

    def _mark(self, msg, stamp):
        """' ✓' or ' ✗ (truth: ...)' against the world, timed by the frame's own stamp."""
        if self.truth is None or self.first_stamp is None:
            return ''
        t = stamp - self.first_stamp  # the world's time: its frame 0 is the first published
        if msg.query_id == 0:
            right, true = self.truth.spontaneous(msg.text, t)
        else:
            asked = self.question if msg.query_id == self.query_id else self.instruction
            right, true = self.truth.answer(asked or '', msg.text, t)
        self.marks.append(right)
        if abs(t - msg.stream_time) > 0.25:   # the node's clock and the world's disagree
            self.offsets.append(msg.stream_time - t)
        return ' ✓' if right else f' ✗ (at world {t:.1f} s the truth: {true or "nothing"})'

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
    used = int(d.get('frames_decoded') or 0)
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
        f'[demo]   lag              {d.get("stream_lag_s", "?")} s behind the newest frame; '
        f'response printed {sum(delays) / len(delays) if delays else 0.0:.2f} s after its '
        'frame on average',
        f'[demo]   cache tokens     {d.get("cache_tokens", "?")} '
        f'(context rebuilds {d.get("context_rebuilds", "?")})',
    ]
    if client.offsets:
        lines.append(f'[demo]   clock            {len(client.offsets)} lines stamped '
                     f'{sum(client.offsets) / len(client.offsets):+.1f} s off the world '
                     '(live_node missed the first frames)')
    if client.marks:
        right = sum(client.marks)
        lines.append(f'[demo]   fact accuracy    {right} of {len(client.marks)} lines right '
                     f'({100.0 * right / len(client.marks):.0f} %, checked against the world)')
    return '\n'.join(lines)
