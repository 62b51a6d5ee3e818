"""Load a running live_node as an operator would, and print what held (issue: hold under load).

    bash -c 'source scripts/env.sh; unshare -n bash -c "ip link set lo up; \
        python scripts/stress_node.py --flood 200 --resets 10 --soak-minutes 60"'

Starts live_node (the embedded default unless --model) and video_publisher (the synthetic
world at 10 Hz) as separate ROS processes on loopback (LOCALHOST discovery, a domain id of
its own), waits for the stream, then:

- ``--flood N``: N questions on the ask service within ``--flood-seconds``; for each, when
  the reply came (accepted or refused) and, if accepted, when its first words and its answer
  were published (response_partial, response); a normal question asked in the middle of the
  flood by another client ('operator'; the flood is anonymous), again while refused; the share of
  the model's frame rate used in every second of the flood (/diagnostics frames_decoded);
- ``--resets N``: N reset calls one second apart, during the flood when both are given; each
  reply time;
- ``--soak-minutes M``: live_node's resident memory every 30 s; growth per hour fitted after
  the first 5 minutes; engine errors.

Numbers only; nothing is asserted (the tests assert behaviour). Prints a JSON summary last.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import rclpy
import rclpy.executors
from diagnostic_msgs.msg import DiagnosticArray
from std_srvs.srv import Trigger

from live_ros.model.config import resolve_model_path
from live_ros.msg import Response
from live_ros.ros.demo_processes import Child, executable, ros_env
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.srv import Ask


class Probe:
    """The operator's node: asks, resets, and records responses and diagnostics with times."""

    def __init__(self):
        self.node = rclpy.create_node('live_stress_probe')
        self.answers = {}   # query_id -> monotonic time of the final response
        self.first_words = {}   # query_id -> monotonic time of its first words (partial or final)
        self.cuts = {}   # query_id -> why its final response was cut ('' when it was not)
        self.finals = []   # (monotonic time, query_id, words, cut) of every final response
        self.diagnostics = []   # (monotonic time, {key: value})
        self.node.create_subscription(Response, 'response', self.on_response, RESPONSE_QOS)
        self.node.create_subscription(Response, 'response_partial', self.on_response,
                                      RESPONSE_QOS)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diagnostics, 10)
        self.ask = self.node.create_client(Ask, 'ask')
        self.reset = self.node.create_client(Trigger, 'reset')
        self.executor = rclpy.executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()

    def close(self):
        self.executor.shutdown(timeout_sec=2.0)
        self._spin.join(2.0)
        self.node.destroy_node()

    def on_response(self, msg):
        if msg.query_id:
            self.first_words.setdefault(msg.query_id, time.monotonic())
        if not msg.partial:
            self.finals.append((time.monotonic(), msg.query_id, len(msg.text.split()), msg.cut))
        if msg.query_id and not msg.partial:
            self.answers.setdefault(msg.query_id, time.monotonic())
            self.cuts.setdefault(msg.query_id, msg.cut)

    def on_diagnostics(self, msg):
        for status in msg.status:
            if 'live_node' in status.name:
                self.diagnostics.append((time.monotonic(),
                                         {kv.key: kv.value for kv in status.values}))

    def call(self, client, request, timeout=30.0):
        """Call and wait; return (reply or None, seconds)."""
        start = time.monotonic()
        future = client.call_async(request)
        while not future.done() and time.monotonic() - start < timeout:
            time.sleep(0.002)
        return future.result() if future.done() else None, time.monotonic() - start

    def decoded(self):
        return int(self.diagnostics[-1][1].get('frames_decoded', 0)) if self.diagnostics else 0


def flood(probe, n, seconds, resets, fps):
    """Run the question flood (and resets beside it); return its numbers."""
    futures = []
    normal = {'asked': None, 'tries': 0, 'query_id': None}
    reset_times, reply_s = [], []
    decoded = [(time.monotonic(), probe.decoded())]
    start = time.monotonic()

    def resetter():
        for _ in range(resets):
            reply, took = probe.call(probe.reset, Trigger.Request())
            reset_times.append(took if reply is not None else None)
            time.sleep(1.0)

    thread = threading.Thread(target=resetter) if resets else None
    if thread:
        thread.start()
    for i in range(n):
        due = start + i * seconds / n
        while time.monotonic() < due:
            time.sleep(0.001)
        t = time.monotonic()
        future = probe.ask.call_async(Ask.Request(query=f'Flood question {i}?'))
        future.add_done_callback(lambda f, t=t: reply_s.append(time.monotonic() - t))
        futures.append((t, future))
        if i >= n // 2 and normal['query_id'] is None and \
                (normal['asked'] is None or t - normal.get('last', 0) > 0.5):
            normal['asked'] = normal['asked'] or t
            normal['last'] = t
            normal['tries'] += 1
            reply, _ = probe.call(probe.ask, Ask.Request(query='What do you see right now?',
                                                         client='operator'))
            if reply is not None and reply.accepted:
                normal['query_id'] = reply.query_id
        if probe.diagnostics and probe.diagnostics[-1][0] > decoded[-1][0]:
            decoded.append((probe.diagnostics[-1][0], probe.decoded()))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(f.done() for _, f in futures):
        time.sleep(0.01)
    replies = []
    for t, f in futures:
        reply = f.result() if f.done() else None
        replies.append((t, reply))
    accepted = [(t, r.query_id) for t, r in replies if r is not None and r.accepted]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(q in probe.answers for _, q in accepted):
        if probe.diagnostics[-1][0] > decoded[-1][0]:
            decoded.append((probe.diagnostics[-1][0], probe.decoded()))
        time.sleep(0.05)
    while normal['query_id'] and normal['query_id'] not in probe.answers and \
            time.monotonic() - start < 300:
        time.sleep(0.05)
    if thread:
        thread.join()
    expired = [q for _, q in accepted if probe.cuts.get(q) == 'expired']
    answer_s = [probe.answers[q] - t for t, q in accepted
                if q in probe.answers and q not in expired]
    start_s = [probe.first_words[q] - t for t, q in accepted
               if q in probe.first_words and q not in expired]
    expired_s = [probe.answers[q] - t for t, q in accepted if q in expired]
    # frames decoded in 2-second windows (between /diagnostics reports), against the frames
    # the model's rate has in the window (2 fps: 4 in 2.0-2.2 s; frames come whole)
    windows = [decoded[0]]
    for point in decoded[1:]:
        if point[0] - windows[-1][0] >= 2.0:
            windows.append(point)
    pairs = [(a, b) for a, b in zip(windows, windows[1:])
             if b[1] >= a[1]]   # a reset restarts the count
    shares = [(b[1] - a[1]) / max(1, round((b[0] - a[0]) * fps)) for a, b in pairs]
    # frames the model never saw (dropped, stale) of those it took in, from start to now
    during = [d for t, d in probe.diagnostics if t >= start - 1.0] or [{}]

    def grown(*keys):   # from the first report of the flood to the last
        return sum(int(during[-1].get(k, 0)) - int(during[0].get(k, 0)) for k in keys)
    refused = [r for _, r in replies if r is not None and not r.accepted]
    return {
        'questions': n, 'seconds': seconds, 'started_at': round(start, 3),
        'replied': sum(r is not None for _, r in replies), 'accepted': len(accepted),
        'reply_s_max': max(reply_s) if reply_s else None,
        'refused': len(refused),
        'refusal_reasons': sorted({r.message.split(':')[0] for r in refused}),
        'answered': len(answer_s),
        'expired': len(expired),
        'expired_s_max': max(expired_s) if expired_s else None,
        'answer_s_max': max(answer_s) if answer_s else None,
        'answer_s_median': statistics.median(answer_s) if answer_s else None,
        'first_words_s_max': max(start_s) if start_s else None,
        'first_words_s_median': statistics.median(start_s) if start_s else None,
        'normal_tries': normal['tries'],
        'normal_answer_s': (probe.answers[normal['query_id']] - normal['asked']
                            if normal['query_id'] in probe.answers else None),
        'frames_used_share_min': min(shares) if shares else None,
        'frames_used_share_mean': statistics.fmean(shares) if shares else None,
        'frames_taken_in': grown('frames_received'),
        'frames_lost': grown('frames_dropped', 'frames_stale'),
        # per window: seconds from the flood's start, frames decoded, frames the rate has
        'frames_windows': [(round(a[0] - start, 2), b[1] - a[1], round((b[0] - a[0]) * fps))
                           for a, b in pairs],
        'reset_s': reset_times,
        # the final responses from the flood's start: seconds, query id (0: the model's own
        # words), words, cut
        'responses': [(round(t - start, 2), q, words, cut)
                      for t, q, words, cut in probe.finals if t >= start],
    }


def rss_mb(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return None


def soak(probe, pid, minutes, warmup_min=5.0, every_s=30.0, ask_every_s=60.0):
    """Sample live_node's RSS for ``minutes`` (a question every ``ask_every_s``).

    Returns the growth fitted after ``warmup_min`` and the samples.
    """
    start = time.monotonic()
    samples = []
    asked = 0
    while time.monotonic() - start < minutes * 60:
        if ask_every_s and time.monotonic() - start >= asked * ask_every_s:
            probe.ask.call_async(Ask.Request(query='What do you see right now?'))
            asked += 1
        samples.append(((time.monotonic() - start) / 60.0, rss_mb(pid), probe.decoded()))
        print(f'[soak] {samples[-1][0]:6.1f} min  RSS {samples[-1][1]:7.1f} MB  '
              f'frames decoded {samples[-1][2]}', flush=True)
        time.sleep(every_s)
    late = [(m, r) for m, r, _ in samples if m >= warmup_min]
    slope = None
    if len(late) >= 3:
        mx = statistics.fmean(m for m, _ in late)
        my = statistics.fmean(r for _, r in late)
        slope = sum((m - mx) * (r - my) for m, r in late) / sum((m - mx) ** 2 for m, _ in late)
    diag = probe.diagnostics[-1][1] if probe.diagnostics else {}
    return {'minutes': minutes, 'questions': asked, 'answers': len(probe.answers),
            'rss_start_mb': samples[0][1], 'rss_end_mb': samples[-1][1],
            'rss_growth_mb_per_h': None if slope is None else slope * 60.0,
            'frames_decoded': probe.decoded(), 'errors': diag.get('errors'),
            'responses': diag.get('responses'), 'samples': samples}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default=None)
    p.add_argument('--flood', type=int, default=0, metavar='N')
    p.add_argument('--flood-seconds', type=float, default=10.0)
    p.add_argument('--resets', type=int, default=0, metavar='N')
    p.add_argument('--soak-minutes', type=float, default=0.0)
    p.add_argument('--publish-fps', type=float, default=10.0)
    p.add_argument('--log-dir', default='runs/stress')
    p.add_argument('--out', default=None, help='write the JSON summary here too')
    p.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE',
                   help='a live_node parameter (repeatable), e.g. max_query_wait:=2.0')
    a = p.parse_args(argv)
    env = ros_env()
    os.environ.update({k: env[k] for k in ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_DOMAIN_ID')})
    Path(a.log_dir).mkdir(parents=True, exist_ok=True)
    model = resolve_model_path(a.model)
    node = Child('live_node', executable('live_node') + [
        '--ros-args', '-p', f'model:={model}', '-p', 'device:=cpu']
        + [arg for param in a.param for arg in ('-p', param)], env, a.log_dir)
    children = [node]
    rclpy.init()
    result = {'model': model, 'domain_id': env['ROS_DOMAIN_ID']}
    probe = None
    try:
        if not node.wait_line('listening on', 300):
            print(node.tail())
            return 1
        children.append(Child('video_publisher', executable('video_publisher') + [
            'synthetic:7', '--ros-args', '-p', f'fps:={a.publish_fps}', '-p', 'loop:=true'],
            env, a.log_dir))
        probe = Probe()
        deadline = time.monotonic() + 60
        while probe.decoded() < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        fps = 2.0
        if a.flood or a.resets:
            result['flood'] = flood(probe, a.flood, a.flood_seconds, a.resets, fps)
            print(json.dumps(result['flood'], indent=1), flush=True)
        if a.soak_minutes:
            result['soak'] = soak(probe, node.proc.pid, a.soak_minutes)
    finally:
        if probe is not None:
            probe.close()
            # the --out file keeps the frame counts of every report (monotonic seconds)
            result['diagnostics'] = [(round(t, 3), {k: v for k, v in d.items()
                                                    if k.startswith(('frames_', 'lag'))})
                                     for t, d in probe.diagnostics]
        codes = [child.stop() for child in reversed(children)]
        result['exit_codes'] = codes
        rclpy.try_shutdown()
    summary = {k: v for k, v in result.items() if k != 'diagnostics'}
    if 'soak' in summary:
        summary['soak'] = {k: v for k, v in summary['soak'].items() if k != 'samples'}
    print(json.dumps(summary, indent=1))
    if a.out:
        with open(a.out, 'w') as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
