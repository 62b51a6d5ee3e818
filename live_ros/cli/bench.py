r"""live-bench: LIVE against per-frame and interleaved dialogue, same frames, model and machine.

The paper's efficiency claim (VideoLLM-online, 7B-v1 on an A100, 5-minute clip: LIVE 13.5 FPS,
per-frame dialogue 7.5 FPS, interleaved dialogue 1.5 FPS) comes from what each format makes
the language model do per frame:

- **live**: the frame's tokens go into one continuous KV cache and a single softmax at its
  last frame token decides (streaming EOS); the model only decodes when it decides to speak.
- **per_frame**: every frame is closed by an assistant turn (``]\nAssistant: ...<eos>``): on
  a frame where nothing happens the reply is empty (eos right after the prompt, as the
  per-frame layout learns it), otherwise the response. The model's own frame decision (read
  in the per-frame context) chooses between the two (``PromptedSession(frame_decision=True)``,
  a stand-in for a per-frame-trained model); the extra cost is the turn after every frame. A
  model trained in the LIVE format is outside its training layout here and may speak more
  often.
- **interleaved**: frames and turns interleave but there is no streaming-EOS decision, so a
  reply is decoded greedily after every frame (up to eos or ``max_new_tokens``).

All three are the sessions of ``live_ros.streaming.baselines`` (what live-eval plays too):
the same cache code, the engine's bounded-context policy, greedy decoding, on the same
pre-encoded frames; the vision encoder runs once per frame and is timed on its own. LIVE's
throughput is also measured through ``StreamPipeline`` (encoder thread in parallel with the
LLM, the whole clip queued, a backlog fed in one forward) and reported beside the table.

Cost growth over stream length (1, 10, 60 minutes of 2 fps stream time) is measured, not
extrapolated, at those stream positions: the session is primed (one prefill, like the engine's
context rebuild) with the history the method would hold there under the bounded-context policy
(computed from the method's measured tokens per frame), then the next frames are timed. The
amortised cost of the periodic rebuild (one prefill of the rebuild prompt every
``(bound - rebuild) / tokens_per_frame`` frames) is timed too and added.
"""

import argparse
import json
import os
import statistics
import sys

from live_ros.benchmark.growth import growth, GROWTH_MINUTES
from live_ros.benchmark.plot import plot
from live_ros.benchmark.streams import (encode_all, ENGINE_KEYS, percentile, run_pipeline,
                                        run_stream, synthetic_frames)
from live_ros.model.config import resolve_model_path
from live_ros.streaming.backend import ENGINES
from live_ros.streaming.baselines import METHODS

PAPER_FPS = {'live': 13.5, 'per_frame': 7.5, 'interleaved': 1.5}
PAPER_MEMORY_GB = {'live': 18.2, 'per_frame': 24.9, 'interleaved': 34.4}
DEFAULT_QUESTION = 'What do you see right now?'


def load_model(spec, device=None, engine=None):
    """Load a model dir or preset through the engine (``engine``: the config override)."""
    from live_ros.model.live_model import load_live_model
    return load_live_model(spec, device=device, **({'engine': engine} if engine else {}))


def bench(model, seconds=60.0, methods=METHODS, question=DEFAULT_QUESTION,
          question_time=None, growth_minutes=GROWTH_MINUTES, probe_frames=6,
          context_budget=None, max_new_tokens=None,
          pipeline=True, log=print, seed=200_000, engines=ENGINES):
    """Run the whole benchmark on one loaded model; return the result dict.

    LIVE runs once per engine (``engines``, eager first: the fast one merges LoRA into the
    model in place); the methods, growth and pipeline runs use the last engine.
    """
    import torch
    fps = float(model.cfg.fps)
    # Rendered at the world's own 224 px, like the training streams; preprocess resizes.
    frames = synthetic_frames(seconds, fps=fps, seed=seed)
    question_time = seconds / 3.0 if question_time is None else question_time
    session_kwargs = {}
    if context_budget:
        session_kwargs['context_budget'] = context_budget
    if max_new_tokens:
        session_kwargs['max_new_tokens'] = max_new_tokens
    log(f'live-bench: encoding {len(frames)} frames once ...')
    embeds, enc_times = encode_all(model, frames)
    enc_mean = statistics.fmean(enc_times)
    result = {
        'device': str(model.device), 'dtype': str(model.dtype).replace('torch.', ''),
        'torch_threads': torch.get_num_threads(), 'stream_seconds': seconds, 'fps': fps,
        'frames': len(frames), 'tokens_per_frame': model.tokens_per_frame,
        'encoder': {'mean_s': enc_mean, 'p50_s': percentile(enc_times, 50),
                    'p99_s': percentile(enc_times, 99), 'fps': 1.0 / enc_mean},
        'question': question, 'question_time': question_time,
        'paper_a100_7b_fps': PAPER_FPS, 'paper_a100_7b_memory_gb': PAPER_MEMORY_GB,
        'methods': {},
    }
    result['engines'] = {}
    for engine in engines:
        log(f'live-bench: LIVE on the {engine} engine ...')
        if engine == 'fast':
            result['lora_merged'] = model.merge_lora()
        run = run_stream('live', model, frames, embeds, question, question_time,
                         dict(session_kwargs, engine=engine))
        result['engines'][engine] = {key: run[key] for key in ENGINE_KEYS}
    session_kwargs['engine'] = result['engine'] = engines[-1]
    from live_ros.progress import progress
    # One bar step per method: a bar inside the timed frame loop would cost in the numbers.
    for method in progress(methods, desc='live-bench', unit='method'):
        log(f'live-bench: streaming through {method} ...')
        run = run_stream(method, model, frames, embeds, question, question_time,
                         session_kwargs)
        llm_mean = run['llm_wall_s'] / run['frames']
        # Sequential: each frame is encoded, then the LLM runs on it.
        run['end_to_end_fps'] = 1.0 / (enc_mean + llm_mean)
        run['end_to_end_note'] = 'encoder then LLM in one thread (mean per-frame costs)'
        if growth_minutes:
            log(f'live-bench: cost growth of {method} at {list(growth_minutes)} minutes ...')
            run['growth'] = growth(method, model, frames, embeds, run, session_kwargs,
                                   minutes=growth_minutes, fps=fps, probe_frames=probe_frames)
        result['methods'][method] = run
    if pipeline and 'live' in methods:
        log('live-bench: LIVE end to end through StreamPipeline ...')
        pipe = run_pipeline(model, frames, session_kwargs)
        result['live_pipeline'] = pipe
        # Throughput with the whole clip queued (the decoder feeds a backlog in one forward):
        # another regime than the per-frame columns, so it is reported beside them.
        if pipe.get('available') and pipe.get('fps'):
            result['methods']['live']['pipeline_fps'] = pipe['fps']
    for run in result['methods'].values():
        run.pop('_typical_reply', None)
    return result


def table(result):
    """Markdown table of the main numbers."""
    gb = 1024 ** 3
    minutes = sorted({p['stream_minutes'] for r in result['methods'].values()
                      for p in r.get('growth', {}).get('points', [])})
    rows = ['| method | end-to-end FPS | LLM FPS | frame p50 ms | frame p99 ms | query TTFT ms '
            '| peak mem GB | max cache tokens | ' + ' | '.join(
                f'LLM ms/frame @{m:g} min' for m in minutes) + ' |',
            '|' + '---|' * (8 + len(minutes))]
    for m, r in result['methods'].items():
        pts = {p['stream_minutes']: p for p in r.get('growth', {}).get('points', [])}
        growth_cells = [
            f'{1000 * (pts[x]["frame_latency_median_s"] + pts[x]["rebuild_amortised_s"]):.0f}'
            if x in pts else '-' for x in minutes]
        ttft = r['query_ttft_s']
        rows.append(
            f'| {m} | {r["end_to_end_fps"]:.2f} | {r["llm_fps"]:.2f} | '
            f'{1000 * r["frame_latency_p50_s"]:.0f} | {1000 * r["frame_latency_p99_s"]:.0f} | '
            f'{"-" if ttft is None else f"{1000 * ttft:.0f}"} | '
            f'{r["peak_memory_bytes"] / gb:.2f} | {r["cache_tokens_max"]} | '
            + ' | '.join(growth_cells) + ' |')
    pipe = result.get('live_pipeline') or {}
    if pipe.get('fps'):
        rows += ['', f'LIVE through StreamPipeline with the whole clip queued (encoder thread '
                 f'parallel, backlog in one forward): {pipe["fps"]:.2f} FPS']
    engines = result.get('engines') or {}
    if engines:
        rows += ['', '| LIVE engine | LLM FPS | silent-frame FPS | response tokens/s | '
                 'frame p50 ms | query TTFT ms |', '|---|---|---|---|---|---|']
        for name, r in engines.items():
            cells = [_num(r['llm_fps']), _num(r['silent_fps']), _num(r['response_tokens_per_s']),
                     _num(r['frame_latency_p50_s'], 1000, 0), _num(r['query_ttft_s'], 1000, 0)]
            rows.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def _num(value, scale=1.0, digits=2):
    return '-' if value is None else f'{value * scale:.{digits}f}'


def main(argv=None):
    """Command line entry point (``live-bench``)."""
    parser = argparse.ArgumentParser(prog='live-bench', description=__doc__.split('\n')[0])
    parser.add_argument('--model', default=None,
                        help='model dir or preset (default: the embedded default model)')
    parser.add_argument('--device', default=None, help='cpu, cuda, ... (default: auto)')
    parser.add_argument('--seconds', type=float, default=60.0, help='stream length (s)')
    parser.add_argument('--methods', default=','.join(METHODS),
                        help='comma list of live, per_frame, interleaved')
    parser.add_argument('--question', default=DEFAULT_QUESTION,
                        help='question asked once mid-stream (its time to first token)')
    parser.add_argument('--question-time', type=float, default=None,
                        help='stream time of the question in s (default: a third in)')
    parser.add_argument('--growth-minutes', default=','.join(map(str, GROWTH_MINUTES)),
                        help="comma list of stream positions in minutes ('' to skip)")
    parser.add_argument('--probe-frames', type=int, default=6,
                        help='frames timed at each growth position (median)')
    parser.add_argument('--context-budget', type=int, default=None,
                        help='KV cache token budget (default: the model config)')
    parser.add_argument('--max-new-tokens', type=int, default=None,
                        help='longest response in tokens (default: the model config)')
    parser.add_argument('--no-pipeline', action='store_true',
                        help='skip the end-to-end StreamPipeline run')
    parser.add_argument('--engines', default=','.join(ENGINES),
                        help='streaming engines LIVE runs on, eager first (the last one also '
                             'runs the methods, growth and pipeline)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads')
    parser.add_argument('--verbose', action='store_true',
                          help="show the libraries' load bars and warnings")
    parser.add_argument('--cameras', default=None, metavar='N[,N...]',
                        help='instead of the method comparison: N cameras on one model in real '
                             'time (e.g. 1,2,4), each at --camera-fps for --seconds; per-camera '
                             'and total FPS, frames used, lag (live_ros.benchmark.cameras)')
    parser.add_argument('--camera-fps', type=float, default=None,
                        help="rate of each camera (default: the model's, 2 fps)")
    parser.add_argument('--camera-engine', default='fast', choices=ENGINES,
                        help='engine of the camera run (default: fast, as live_node)')
    parser.add_argument('--no-batch', action='store_true',
                        help="camera run: one forward per step (default: the cameras' "
                             'waiting steps share forwards, as live_node batch_cameras)')
    parser.add_argument('--out', default='bench_out', help='output dir (JSON + PNG)')
    args = parser.parse_args(argv)
    if not args.verbose:
        from live_ros.library_logs import quiet_library_logs
        quiet_library_logs()

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = resolve_model_path(args.model)
    command = 'live-bench ' + ' '.join(argv if argv is not None else sys.argv[1:])
    if args.cameras:
        return camera_bench(args, spec, command)
    model = load_model(spec, device=args.device, engine='eager')
    minutes = tuple(float(x) for x in args.growth_minutes.split(',') if x.strip())
    result = bench(model, seconds=args.seconds, methods=tuple(args.methods.split(',')),
                   question=args.question, question_time=args.question_time,
                   growth_minutes=minutes, probe_frames=args.probe_frames,
                   context_budget=args.context_budget,
                   max_new_tokens=args.max_new_tokens, pipeline=not args.no_pipeline,
                   engines=tuple(args.engines.split(',')))
    result['model'] = spec
    result['command'] = command
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, 'bench.json')
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2, default=str)
    png_path = plot(result, os.path.join(args.out, 'bench.png'))
    print(table(result))
    print(f'live-bench: wrote {json_path} and {png_path}')
    return 0


def camera_bench(args, spec, command):
    """live-bench --cameras: each camera count in turn on the one loaded model."""
    from live_ros.benchmark.cameras import cameras_table, run_cameras
    counts = [int(n) for n in args.cameras.split(',') if n.strip()]
    model = load_model(spec, device=args.device, engine=args.camera_engine)
    results = [run_cameras(model, n, seconds=args.seconds, fps=args.camera_fps,
                           context_budget=args.context_budget,
                           batch=not args.no_batch and args.camera_engine == 'fast',
                           max_new_tokens=args.max_new_tokens) for n in counts]
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, 'bench_cameras.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'model': spec, 'command': command, 'engine': args.camera_engine,
                   'device': str(model.device), 'runs': results}, f, indent=2, default=str)
    print(cameras_table(results))
    print(f'live-bench: wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
