"""live-infer: play a video file, image folder or rosbag2 through the LIVE session.

    live-infer VIDEO [--fps 2] [--ask '12.5:What am I doing?']... [--model DIR|preset]
    live-infer BAG --topic /camera/image_raw --record responses_bag

Frames are taken at ``--fps`` by the frame sampler live_node uses (streaming/sampling.py: the
first source frame at or after each due time, so a recording gives the frames the node would
have picked) and fed with their video time as stream time; questions are
inserted at their times; responses print as they stream, with their stream time. By default
every frame is processed (offline); ``--realtime`` paces frames by the wall clock through the
threaded pipeline, which drops frames when the model cannot keep up (as on a robot).
A bag plays in camera time by message stamp (live_ros.data.bag); ``--record`` writes what the
model said as a bag of live_ros/msg/Response on the images' stamps.
"""

import argparse
import math
import os
import sys
import time

from live_ros.model.config import DEMO_MODEL_NOTE, is_embedded_default, resolve_model_path


def parse_ask(spec):
    """Parse 'SECONDS:question' into (seconds, question)."""
    head, sep, text = spec.partition(':')
    try:
        t = float(head)
    except ValueError:
        t = math.nan
    if not sep or not text.strip() or not math.isfinite(t) or t < 0:
        raise argparse.ArgumentTypeError(f'expected SECONDS:QUESTION, got {spec!r}')
    return t, text.strip()


def iter_stamped_frames(source, fps, bag=None):
    """Yield Frame(stream_time, rgb, stamp_ns, frame_id) of a bag, a video or an image folder.

    Bags keep their camera stamps; videos and folders are stamped with their stream time.
    ``bag`` is an opened BagImages of ``source`` (its counters stay with the caller). The
    frames are those live_node would pick (streaming/sampling.py), one per due time at most.
    """
    from live_ros.data.bag import Frame
    if bag is not None:
        yield from bag.frames(fps)
        return
    from live_ros.data.sources import parse_source
    kind = parse_source(source).kind
    if kind not in ('file', 'folder'):
        raise ValueError(f'live-infer plays a video file, an image folder or a bag, not a '
                         f'{kind} ({source!r}); video_publisher and live_node stream the rest')
    from live_ros.data.video import iter_frames
    for t, rgb in iter_frames(source, fps):
        yield Frame(t, rgb, round(t * 1e9), '')


class Printer:
    """Prints responses as their tokens stream in, one line per turn."""

    def __init__(self, out=None):
        self._out = out
        self.questions = {}
        self._open = None
        self._printed = ''

    @property
    def out(self):
        """Stream to print to (sys.stdout as it is at print time by default)."""
        return self._out or sys.stdout

    def on_token(self, query_id, text, t):
        """Print the new part of a streaming response."""
        key = (query_id, t)
        if key != self._open:
            self._close()
            if query_id:
                self.out.write(f'[{t:8.2f}s] User: {self.questions.get(query_id, "?")}\n')
            self.out.write(f'[{t:8.2f}s] Assistant:')
            self._open, self._printed = key, ''
        if text.startswith(self._printed):
            delta = text[len(self._printed):]
        else:
            delta = '\r' + text
        if not self._printed and delta:
            delta = ' ' + delta
        self.out.write(delta)
        self.out.flush()
        self._printed = text

    def on_response(self, response):
        """End the line of a finished response."""
        self._close()

    def _close(self):
        if self._open is not None:
            self.out.write('\n')
            self.out.flush()
        self._open = None


def build_parser():
    """Command line of live-infer."""
    p = argparse.ArgumentParser(prog='live-infer', description=__doc__.split('\n')[0])
    p.add_argument('video', metavar='SOURCE',
                   help='video file, folder of images, or rosbag2 (folder or .mcap / .db3)')
    p.add_argument('--topic', default=None,
                   help='image topic of a bag (default: its only sensor_msgs image topic)')
    p.add_argument('--record', default=None, metavar='OUT',
                   help='write the responses to a new bag OUT (live_ros/msg/Response on '
                        '/response, stamped with the image after which the model spoke)')
    p.add_argument('--record-storage', default='mcap', choices=('mcap', 'sqlite3'),
                   help='storage of the --record bag')
    p.add_argument('--fps', type=float, default=None, help='stream rate (default: model, 2)')
    p.add_argument('--ask', type=parse_ask, action='append', default=[],
                   metavar='SECONDS:QUESTION', help='ask a question at a stream time')
    p.add_argument('--model', default=None,
                   help='model dir or preset (default: the embedded default model)')
    p.add_argument('--threshold', type=float, default=None, help='response threshold')
    p.add_argument('--max-new-tokens', type=int, default=None,
                   help='longest response in tokens (default: the model config)')
    p.add_argument('--context-budget', type=int, default=None,
                   help='KV cache tokens before the context is rebuilt (default: the model)')
    p.add_argument('--device', default=None, help='cpu, cuda, ... (default: auto)')
    p.add_argument('--engine', default='fast', choices=('eager', 'fast'),
                   help='streaming engine: fast (LoRA merged, static KV cache; default) or '
                        'eager (the reference path)')
    p.add_argument('--max-frames', type=int, default=None, help='stop after this many frames')
    p.add_argument('--realtime', action='store_true',
                   help='pace by the wall clock through the threaded pipeline (drops frames)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--verbose', action='store_true',
                     help="show the libraries' load bars and warnings")
    return p


def main(argv=None):
    """Entry point of live-infer."""
    args = build_parser().parse_args(argv)
    if not args.verbose:
        from live_ros.library_logs import quiet_library_logs
        quiet_library_logs()
    import torch
    from live_ros.data.bag import BagError, BagImages, ResponseRecorder
    from live_ros.data.sources import parse_source
    if args.threads:
        torch.set_num_threads(args.threads)
    source = parse_source(args.video)
    if source.kind in ('file', 'folder', 'bag') and not os.path.exists(source.target):
        print(f'live-infer: no such video, folder or bag: {args.video}', file=sys.stderr)
        return 2
    bag = recorder = None
    try:
        if source.kind == 'bag':
            bag = BagImages(source.target, args.topic)
        elif args.topic:
            raise BagError(f'--topic is for bags; {args.video} is not one')
        if args.record:
            recorder = ResponseRecorder(args.record, storage=args.record_storage)
    except BagError as exc:
        print(f'live-infer: {exc}', file=sys.stderr)
        if bag is not None:
            bag.close()
        return 2
    try:
        return _play(args, bag, recorder)
    finally:
        if bag is not None:
            bag.close()
            if bag.stale or bag.bad:
                skipped = ', '.join(f'{n} x {why}' for why, n in bag.bad.items())
                print(f'# bag: {bag.stale} frames with older stamps dropped'
                      + (f'; not converted: {skipped}' if skipped else ''), file=sys.stderr)
        if recorder is not None:
            recorder.close()
            print(f'# recorded {recorder.count} responses to {recorder.path}', file=sys.stderr)


def _play(args, bag, recorder):
    """Load the model and stream the source through it; responses print (and record)."""
    from live_ros.model.live_model import load_live_model
    from live_ros.streaming.session import StreamingSession
    from live_ros.streaming.streamer import CallbackStreamer
    model_name = resolve_model_path(args.model)
    if is_embedded_default(model_name):
        print(f'live-infer: note: {DEMO_MODEL_NOTE}', file=sys.stderr)
    model = load_live_model(model_name, device=args.device, engine=args.engine)
    fps = args.fps or model.cfg.fps
    printer = Printer()

    def on_response(response):
        printer.on_response(response)
        if recorder is not None:
            recorder.write(response)

    # one streamer: the session's offline, the pipeline's (which runs the session) realtime
    streamer = CallbackStreamer(printer.on_token, on_response)
    session = StreamingSession(model, response_threshold=args.threshold,
                               max_new_tokens=args.max_new_tokens,
                               context_budget=args.context_budget,
                               streamer=None if args.realtime else streamer)

    def frames():   # (stream time, rgb, tag): the tag comes back on the responses
        for frame in iter_stamped_frames(args.video, fps, bag=bag):
            yield frame.stream_time, frame.rgb, (frame.stamp_ns, frame.frame_id)

    started = time.perf_counter()
    count = 0
    if args.realtime:
        count = _run_realtime(model, session, printer, streamer, frames(), args)
    else:
        for t, text in sorted(args.ask):
            printer.questions[session.ask(text, t)] = text
        for t, frame, tag in frames():
            if args.max_frames is not None and count >= args.max_frames:
                break
            session.push_frame(frame, t, tag)
            count += 1
        session.flush_queries()
    elapsed = time.perf_counter() - started
    print(f'# {count} frames at {fps:g} fps, {len(session.responses)} responses, '
          f'{elapsed:.1f} s ({elapsed / max(count, 1) * 1000:.0f} ms/frame) on {model.device}',
          file=sys.stderr)
    return 0


def _run_realtime(model, session, printer, streamer, frames, args):
    from live_ros.streaming.pipeline import StreamPipeline
    pipe = StreamPipeline(model, session, streamer=streamer)
    asks = sorted(args.ask)
    start = time.perf_counter()
    count = 0
    try:
        for t, frame, tag in frames:
            if args.max_frames is not None and count >= args.max_frames:
                break
            time.sleep(max(0.0, start + t - time.perf_counter()))
            while asks and asks[0][0] <= t:
                qt, text = asks.pop(0)
                printer.questions[pipe.submit_query(text, qt)] = text
            pipe.submit_frame(frame, t, tag)
            count += 1
        for qt, text in asks:
            printer.questions[pipe.submit_query(text, qt)] = text
        pipe.wait_idle(timeout=600)
        stats = pipe.stats()
        print(f'# dropped {stats["frames_dropped"]} of {stats["frames_received"]} frames',
              file=sys.stderr)
    finally:
        pipe.close()
    session.flush_queries()  # questions after the last frame (threads are joined now)
    return count


if __name__ == '__main__':
    sys.exit(main())
