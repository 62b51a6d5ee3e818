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
import sys
import time
from pathlib import Path

from live_ros.model.config import DEMO_MODEL_NOTE, is_embedded_default, resolve_model_path
from live_ros.ros.demo_client import DemoClient, summary
from live_ros.ros.demo_processes import Child, executable, ros_env

DEFAULT_SOURCE = 'synthetic:200007'  # a held-out (test split) seed of the synthetic world
DEFAULT_QUESTION = 'How many shapes are there?'
DEFAULT_INSTRUCTION = 'Narrate what happens in real time.'
LOG_DIR = Path('runs') / 'demo'


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
    node_cmd = executable('live_node') + [
        '--ros-args', '-p', f'model:={model}', '-p', f'device:={args.device}',
        '-p', 'fps:=2.0', '-p', 'publish_partial:=false', '-p', 'image_reliability:=reliable']
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
        truth = world_truth(args.source)
        if truth is None and is_embedded_default(model):
            out(f'[demo] WARNING: {DEMO_MODEL_NOTE}')
        client = DemoClient(args.question, args.ask_at, out=out,
                            instruction=args.instruction or None, truth=truth)
        # Publishing starts once both live_node and this client subscribe, reliably: a first
        # frame lost (best effort just after matching, or published before live_node matched)
        # starts live_node's stream clock late, and every line then shows a stream time a
        # frame or two before the world's event it follows (measured: -0.5 s and -1.0 s).
        pub_cmd = executable('video_publisher') + [
            '--ros-args', '-p', f'source:={args.source}', '-p', f'fps:={args.publish_fps}',
            '-p', 'loop:=true', '-p', 'wait_for_subscribers:=2', '-p', 'reliability:=reliable']
        children.append(Child('video_publisher', pub_cmd, env, log_dir))
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


def world_truth(spec):
    """Return a checker of what is said about a synthetic source (None for real video)."""
    from live_ros.data.sources import parse_source
    source = parse_source(spec)
    if source.kind != 'synthetic':
        return None
    from live_ros.data.facts import WorldTruth
    from live_ros.data.synthetic import SyntheticWorld
    return WorldTruth(SyntheticWorld(source.target))


def main(argv=None):
    """Command line: ``python -m live_ros.ros.demo [SOURCE] [--forever | --short | ...]``."""
    parser = argparse.ArgumentParser(prog='live-demo', description=__doc__.split('\n')[0])
    parser.add_argument('source', nargs='?', default=DEFAULT_SOURCE,
                        help='synthetic:<seed>, a video file, or camera:<index>')
    parser.add_argument('--model', default=None, help='model dir (default: embedded default)')
    parser.add_argument('--seconds', type=float, default=60.0, help='stream time to run')
    parser.add_argument('--forever', action='store_true', help='run until Ctrl-C')
    parser.add_argument('--short', action='store_true', help='a short run (tests)')
    parser.add_argument('--ask-at', type=float, default=20.0, help='stream time of the question')
    parser.add_argument('--question', default=DEFAULT_QUESTION,
                        help='question asked through the ask service midway')
    parser.add_argument('--instruction', default=DEFAULT_INSTRUCTION,
                        help="said at the first frame ('' for none): the model was trained to "
                        'narrate after such a request')
    parser.add_argument('--publish-fps', type=float, default=None,
                        help='publishing rate (default: 2 for the synthetic world, else the '
                        "source's own rate); live_node samples 2 fps either way")
    parser.add_argument('--device', default='cpu', help='torch device of live_node')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID (default: one no process here uses)')
    parser.add_argument('--load-timeout', type=float, default=240.0,
                        help='seconds to wait for the model to load')
    parser.add_argument('--answer-timeout', type=float, default=60.0,
                        help='seconds to wait for the answer to the question')
    parser.add_argument('--log-dir', default=str(LOG_DIR),
                        help='folder for the node logs')
    args = parser.parse_args(argv)
    if args.short:
        args.seconds, args.ask_at = min(args.seconds, 16.0), min(args.ask_at, 6.0)
    if args.publish_fps is None:
        args.publish_fps = 2.0 if world_truth(args.source) is not None else 0.0
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
