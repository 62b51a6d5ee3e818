#!/usr/bin/env python3
"""Speed of the VideoLLM-online 8B-v1+ shaped model on one GPU, through our streaming engine.

Self-contained for the lent GPU machine (Python 3.12, torch + CUDA, transformers 5.x, no ROS,
no internet): no weights are downloaded. The model has the exact 8B-v1+ shape with RANDOM
weights in bfloat16 with SDPA attention, built directly on the GPU:

- LLM: Llama-3-8B shape (32 layers, hidden 4096, MLP 14336, 32 heads / 8 KV heads, vocab
  128256, 8192 positions, rope theta 500000);
- vision: SigLIP-large-patch16-384 vision tower shape (24 layers, hidden 1024, MLP 4096, 16
  heads, 384 px, patch 16), frame tokens = pooler output + 24 x 24 grid pooled to 3 x 3 = 10;
- connector: Linear(1024, 4096) -> GELU -> Linear(4096, 4096).

LoRA as the released adapter has it (r 128, alpha 256, on q/k/v/o/gate/up/down and lm_head,
the connector as a modules_to_save copy) is applied with peft, its B matrices random so that
merging really changes the weights. The tokenizer is a small byte-level BPE trained here on the
template text (ids fit in the 128256 vocabulary); only the number of text tokens matters.

Both streaming engines run in the same process (live_ros/streaming/backend.py): first the
eager reference path with LoRA unmerged (as the reference code deploys it), on
``--eager-frames`` frames; then LoRA is merged (peft merge_and_unload) and the fast path runs
everything else: one StaticCache for the context bound, the frame and decode steps compiled
(``--compile``, default 'reduce-overhead' = CUDA graphs; warm-up excluded from the timings).

What is streamed: a 5-minute, 2 fps stream (600 frames) through live_ros's StreamingSession
(one continuous KV cache, the engine's context policy). Random weights cannot decide when to
speak, so the streaming-EOS decision is computed (softmax at every frame, as always) but its
outcome is replaced by a schedule: the assistant speaks every ``--speak-every`` frames with
``--response-tokens`` tokens (eos never comes from random weights, so every response runs to
that length); ``--queries`` questions are asked at even intervals and answered at once
(time-to-first-token measured from the ask). The vision tower runs once per frame (batch 1,
as frames arrive) and is timed separately; LIVE's frames-per-second is reported for the LLM
alone, for encoder + LLM in sequence, and, when the engine has a StreamPipeline, end to end
with the encoder thread in parallel. The paper's baselines (per-frame and interleaved dialogue,
live_ros/streaming/baselines.py, the sessions live-eval and live-bench use) run on a shorter
stream on the fast path with the same schedule. The cost at stream minute 60 against minute 1
comes from live_ros.cli.bench.growth (the session primed with the history the bounded context
holds there). Last, several cameras on the one model (``--cameras 1,2,4,8``, each a real-time
``--fps`` stream of ``--camera-seconds`` with its own session and row of one static cache,
steps batched across cameras, uncompiled):
total and per-camera frames used, lag and peak memory (live_ros.benchmark.cameras).

Usage: ``python scripts/gpu_bench_8b.py`` (GPU, < 6 min) or ``--tiny`` (CPU, tiny shapes,
the fast path compiled with a CPU backend). Prints ``SUMMARY {...}`` with live_silent_fps,
response_tokens_per_s, eager_live_silent_fps, ttft_s, peak_gpu_memory_gb (and more); writes
JSON to ``$OUT/gpu_bench_8b.json`` (else the current directory) and, on a GPU, to
docs/results/gpu_bench_8b_<gpu>.json.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

def ensure_cv2():
    """Let live_ros import without OpenCV (the GPU machine may lack it).

    OpenCV is only used to resize frames; frames here are made at the model's 384 px, so a
    resize is never needed. A stand-in module that refuses to resize keeps that honest.
    """
    try:
        import cv2  # noqa: F401
    except ImportError:
        shim = types.ModuleType('cv2')
        shim.INTER_CUBIC = 2

        def resize(*args, **kwargs):
            raise RuntimeError('OpenCV is not installed; frames must already be 384 px')
        shim.resize = resize
        sys.modules['cv2'] = shim


def build_model(tiny, device):
    """Build the random 8B-v1+ shaped LiveModel (live_ros.testing.shapes) with LoRA on it."""
    import torch
    from live_ros.testing.shapes import build_random_model
    dtype = torch.bfloat16 if device.type == 'cuda' else torch.float32
    return build_random_model('tiny-8b' if tiny else '8b', device, dtype,
                              wrap_llm=lambda llm: apply_released_lora(llm, device, dtype))


def apply_released_lora(llm, device, dtype):
    """Wrap the LLM with LoRA as the released 8B-v1+ adapter is laid out (random B)."""
    import torch
    from peft import get_peft_model

    from live_ros.model.config import preset
    from live_ros.model.live_model import lora_config
    torch.manual_seed(1)
    with torch.device(device):
        llm = get_peft_model(llm, lora_config(preset('videollm-online-8b-v1plus')))
    with torch.no_grad():
        for name, param in llm.named_parameters():
            if 'lora_B' in name:
                param.normal_(0, 1e-3)
    return llm


def scheduled_session(method, model, speak_every, **kwargs):
    """Build a session of ``method`` whose speak/silent outcome follows a schedule.

    The decision's softmax is still computed on every frame, so its cost is measured.
    """
    from live_ros.benchmark.streams import bench_session   # per-frame: live-bench's stand-in
    session = bench_session(method, model, **kwargs)
    decide = session.decide

    def on_schedule(logits):
        _, p_interval = decide(logits)
        return (speak_every > 0 and (session.frame_index + 1) % speak_every == 0), p_interval
    session.decide = on_schedule
    return session


def make_frames(n, size, seed=0):
    """Synthetic RGB uint8 frames at the model's size: a moving gradient with noise."""
    import numpy as np
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    frames = []
    for i in range(n):
        phase = i / 20.0
        img = np.stack([np.sin(6 * xx + phase), np.cos(4 * yy - phase), xx * yy], -1)
        img = (img * 100 + 128 + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)
        frames.append(img)
    return frames


def percentile(values, q):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def sync(device):
    """Wait for the GPU so wall-clock times are real."""
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()


def encode(model, frames, device):
    """Encode frames one at a time (as they arrive); return embeddings and times."""
    import torch
    embeds, times = [], []
    with torch.no_grad():
        for f in frames:
            t0 = time.perf_counter()
            e = model.encode_images([f])[0]
            sync(device)
            times.append(time.perf_counter() - t0)
            embeds.append(e)
    return embeds, times


def stream(method, model, embeds, fps, args, device, queries, engine, backend=None):
    """Stream pre-encoded frames through one method; return its measurements.

    ``backend``: the fast path's shared backend (one static cache, steps compiled once).
    """
    import torch
    first = {}

    def on_token(query_id, partial, t):
        first.setdefault(query_id, time.perf_counter())
    session = scheduled_session(method, model, args.speak_every, engine=engine,
                                backend=backend, max_new_tokens=args.response_tokens,
                                on_token=on_token)
    ask_at = {int(q * len(embeds)) for q in queries}
    lat, ttft, responses = [], [], 0
    silent, speaking = [], []   # latencies of frames without / with their own response
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    wall = time.perf_counter()
    for i, e in enumerate(embeds):
        t = i / fps
        t0 = time.perf_counter()
        out = session.push_frame(e, t)
        sync(device)
        lat.append(time.perf_counter() - t0)
        own = [r for r in out if r.query_id == 0]
        responses += len(own)
        if own:
            speaking.append((lat[-1], sum(len(r.token_ids) for r in own)))
        else:
            silent.append(lat[-1])
        if i in ask_at:
            asked = time.perf_counter()
            qid = session.ask('What am I doing right now?', t)
            session.take_responses()
            sync(device)
            ttft.append(first.get(qid, time.perf_counter()) - asked)
    wall = time.perf_counter() - wall
    silent_s = statistics.fmean(silent) if silent else None
    decode_s = sum(t - (silent_s or 0.0) for t, _ in speaking)
    tokens = sum(n for _, n in speaking)
    result = {
        'method': method, 'engine': engine, 'frames': len(embeds), 'llm_wall_s': wall,
        'silent_fps': 1 / silent_s if silent_s else None,
        'response_tokens_per_s': tokens / decode_s if decode_s > 0 and tokens else None,
        'llm_fps': len(embeds) / wall, 'frame_latency_p50_s': percentile(lat, 50),
        'frame_latency_p99_s': percentile(lat, 99), 'responses': responses,
        'query_ttft_s': ttft, 'query_ttft_mean_s': statistics.fmean(ttft) if ttft else None,
        'cache_tokens_max': session.max_cache_tokens, 'rebuilds': session.rebuilds,
    }
    if device.type == 'cuda':
        result['peak_gpu_memory_gb'] = torch.cuda.max_memory_allocated() / 1024 ** 3
    return result


def pipeline(model, frames, fps, args, device, backend):
    """LIVE end to end through StreamPipeline (encoder thread parallel to the LLM), fast path."""
    from live_ros.streaming.pipeline import StreamPipeline
    session = scheduled_session('live', model, args.speak_every, engine='fast',
                                backend=backend, max_new_tokens=args.response_tokens)
    pipe = StreamPipeline(model, session, queue_size=8, drop_frames=False)
    try:
        t0 = time.perf_counter()
        for i, f in enumerate(frames):
            pipe.submit_frame(f, i / fps)
        pipe.wait_idle(timeout=300)
        sync(device)
        wall = time.perf_counter() - t0
        stats = pipe.stats()
    finally:
        pipe.close(timeout=10.0)
    done = int(stats.get('frames_decoded', session.frame_index + 1))
    return {'frames': done, 'wall_s': wall, 'fps': done / wall,
            'stats': {k: v for k, v in stats.items() if isinstance(v, (int, float, str))}}


def main(argv=None):
    """Run the benchmark and print/write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tiny', action='store_true', help='tiny shapes on CPU (smoke test)')
    parser.add_argument('--minutes', type=float, default=5.0,
                        help='stream length of the fast LIVE run')
    parser.add_argument('--fps', type=float, default=2.0, help='stream rate')
    parser.add_argument('--speak-every', type=int, default=8,
                        help='frames between spontaneous responses (schedule)')
    parser.add_argument('--response-tokens', type=int, default=16,
                        help='tokens per response (random weights never stop early)')
    parser.add_argument('--queries', type=int, default=3,
                        help='questions asked at even intervals (time to first token)')
    parser.add_argument('--eager-frames', type=int, default=120,
                        help='frames for the eager reference path (LoRA unmerged)')
    parser.add_argument('--baseline-frames', type=int, default=60,
                        help='stream length for per-frame / interleaved (0: skip)')
    parser.add_argument('--pipeline-frames', type=int, default=240,
                        help='frames for the end-to-end StreamPipeline run (0: skip)')
    parser.add_argument('--growth-minutes', default='1,60',
                        help='stream positions (minutes) for the cost-growth probe (empty skips)')
    parser.add_argument('--cameras', default='1,2,4,8',
                        help='camera counts of the multi-camera runs (empty: none)')
    parser.add_argument('--camera-seconds', type=float, default=15.0,
                        help='real-time stream length of each multi-camera run')
    parser.add_argument('--compile', default=None,
                        help="torch.compile mode of the fast path's steps ('none' for none; "
                             'default: reduce-overhead on a GPU, backend:aot_eager with --tiny)')
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    ensure_cv2()
    import torch
    device = torch.device('cuda' if torch.cuda.is_available() and not args.tiny else 'cpu')
    if args.tiny:
        args.minutes = min(args.minutes, 0.25)
        args.eager_frames = min(args.eager_frames, 12)
        args.baseline_frames = min(args.baseline_frames, 10)
        args.pipeline_frames = min(args.pipeline_frames, 10)
        args.response_tokens = min(args.response_tokens, 4)
        args.cameras, args.camera_seconds = '1,2', min(args.camera_seconds, 2.0)
    if args.compile is None:
        args.compile = 'backend:aot_eager' if args.tiny else 'reduce-overhead'
    compile_mode = None if args.compile == 'none' else args.compile
    info = {
        'device': torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu',
        'torch': torch.__version__, 'cuda': torch.version.cuda,
        'python': sys.version.split()[0], 'shape': 'tiny' if args.tiny else '8b-v1plus',
        'args': vars(args),
    }
    import transformers
    info['transformers'] = transformers.__version__
    model, build_s, params = build_model(args.tiny, device)
    info.update(build_s=build_s, parameters=params, tokens_per_frame=model.tokens_per_frame,
                dtype=str(model.dtype), lora='r128 on q/k/v/o/gate/up/down + lm_head')
    size = model.cfg.frame_size
    n = int(round(args.minutes * 60 * args.fps))
    frames = make_frames(n, size)
    queries = [(k + 1) / (args.queries + 1) for k in range(args.queries)]
    with torch.no_grad():
        encode(model, frames[:4], device)  # warm-up (CUDA kernels, allocator)
    embeds, enc_times = encode(model, frames, device)
    enc_mean = statistics.fmean(enc_times)
    info['encoder'] = {'frames': n, 'mean_s': enc_mean, 'p50_s': percentile(enc_times, 50),
                       'p99_s': percentile(enc_times, 99), 'fps': 1 / enc_mean}

    # The eager reference: DynamicCache, LoRA unmerged, as the reference code runs it.
    m = min(args.eager_frames, n)
    stream('live', model, embeds[:8], args.fps, args, device, [], 'eager')  # warm-up
    eager = stream('live', model, embeds[:m], args.fps, args, device, queries, 'eager')
    info['eager_live'] = eager
    print(json.dumps({'eager_live': eager}, indent=1), flush=True)

    # The fast path: LoRA merged, one static cache, compiled steps; warm-up compiles. A failure
    # there (another transformers version on the device) still leaves the eager numbers.
    try:
        run_fast(model, frames, embeds, queries, args, device, compile_mode, info)
    except Exception as exc:
        import traceback
        traceback.print_exc()
        info['fast_error'] = f'{type(exc).__name__}: {exc}'
    info['total_s'] = time.perf_counter() - t_start
    summary = {k: info.get(k) for k in ('device', 'shape', 'build_s', 'total_s',
                                         'fast_warmup_s', 'fast_error')}
    live = info.get('live', {})
    summary.update(
        live_silent_fps=live.get('silent_fps'),
        response_tokens_per_s=live.get('response_tokens_per_s'),
        eager_live_silent_fps=eager['silent_fps'],
        eager_response_tokens_per_s=eager['response_tokens_per_s'],
        ttft_s=live.get('query_ttft_mean_s'), eager_ttft_s=eager['query_ttft_mean_s'],
        peak_gpu_memory_gb=live.get('peak_gpu_memory_gb', eager.get('peak_gpu_memory_gb')),
        live_fps_llm=live.get('llm_fps'),
        live_fps_encoder_then_llm=live.get('fps_encoder_then_llm'))
    for method in ('per_frame', 'interleaved', 'live_same_length_as_baselines'):
        if method in info:
            summary[f'{method}_fps_llm'] = info[method]['llm_fps']
    if 'live_pipeline' in info:
        summary['live_pipeline_fps'] = info['live_pipeline']['fps']
    for run in info.get('cameras', []):
        summary[f'cameras_{run["cameras"]}_total_fps'] = run['total_fps']
        summary[f'cameras_{run["cameras"]}_used_share'] = run['used_share']
    if info.get('growth'):
        summary['growth_ms_per_frame'] = {p['stream_minutes']: 1000 * (
            p['frame_latency_median_s'] + p['rebuild_amortised_s'])
            for p in info['growth']['points']}
    info['summary'] = summary
    out_dir = os.environ.get('OUT') or '.'
    paths = [os.path.join(out_dir, 'gpu_bench_8b.json')]
    if device.type == 'cuda':
        gpu = info['device'].lower().replace('nvidia', '').strip().replace(' ', '_')
        paths.append(str(REPO / 'docs' / 'results' / f'gpu_bench_8b_{gpu}.json'))
    for path in paths:
        with open(path, 'w') as f:
            json.dump(info, f, indent=1, default=str)
    print('SUMMARY ' + json.dumps(summary), flush=True)
    print('wrote ' + ', '.join(paths))
    return 0


def run_fast(model, frames, embeds, queries, args, device, compile_mode, info):
    """Run the fast path (LoRA merged, one static cache, compiled steps) into ``info``."""
    enc_mean, n = info['encoder']['mean_s'], len(embeds)
    from live_ros.streaming.backend import make_backend
    from live_ros.streaming.context import context_bound
    info['lora_merged'] = model.merge_lora()
    bound = context_bound(model.max_context, model.cfg.context_budget)
    backend = make_backend(model, 'fast', bound, compile=compile_mode)
    warm = time.perf_counter()
    stream('live', model, embeds[:2 * args.speak_every + 2], args.fps, args, device, [0.5],
           'fast', backend)
    info['fast_warmup_s'] = time.perf_counter() - warm
    live = stream('live', model, embeds, args.fps, args, device, queries, 'fast', backend)
    live['fps_encoder_then_llm'] = 1 / (enc_mean + live['llm_wall_s'] / n)
    info['live'] = live
    print(json.dumps({'live': live}, indent=1), flush=True)
    if args.baseline_frames:
        k = min(args.baseline_frames, n)
        for method in ('per_frame', 'interleaved', 'live'):
            r = stream(method, model, embeds[:k], args.fps, args, device, [0.5], 'fast', backend)
            r['fps_encoder_then_llm'] = 1 / (enc_mean + r['llm_wall_s'] / k)
            info[method if method != 'live' else 'live_same_length_as_baselines'] = r
            print(json.dumps({method: r['llm_fps']}), flush=True)
    if args.pipeline_frames:
        info['live_pipeline'] = pipeline(model, frames[:args.pipeline_frames], args.fps, args,
                                         device, backend)
    minutes = [float(x) for x in args.growth_minutes.split(',') if x.strip()]
    if minutes:
        info['growth'] = growth(model, embeds, live, minutes, args, device, backend)
    info['compiled_step_lengths'] = sorted(getattr(backend, 'compiled_lengths', ()))
    counts = [int(c) for c in args.cameras.split(',') if c.strip()]
    if counts:   # last, and on its own: a failure here keeps everything above
        try:
            info['cameras'] = cameras(model, counts, args, device)
        except Exception as exc:
            import traceback
            traceback.print_exc()
            info['cameras_error'] = f'{type(exc).__name__}: {exc}'


def cameras(model, counts, args, device):
    """Several real-time cameras at --fps on the one model (live_ros.benchmark.cameras).

    Each camera has its own session and its row of one static cache (fast path, LoRA merged,
    steps not compiled: one compile per cache would cost minutes), the scheduled decisions,
    the model in turn with the others (streaming/fair_lock.py) and due frame steps batched
    (streaming/camera_rows.py). Peak GPU memory is per run.
    """
    import torch
    from live_ros.benchmark.cameras import run_cameras
    runs = []
    for n in counts:
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        run = run_cameras(model, n, seconds=args.camera_seconds, fps=args.fps,
                          make_session=lambda rows: scheduled_session(
                              'live', model, args.speak_every, engine='fast', compile='',
                              rows=rows))
        if device.type == 'cuda':
            run['peak_gpu_memory_gb'] = torch.cuda.max_memory_allocated() / 2 ** 30
        print(json.dumps({f'cameras_{n}': {k: run[k] for k in (
            'total_fps', 'used_share', 'lag_max_s')}}), flush=True)
        runs.append(run)
    return runs


def growth(model, embeds, live, minutes, args, device, backend):
    """Measure the silent per-frame cost at stream minutes (bench.growth), fast path."""
    from live_ros.benchmark.growth import growth as measure_growth
    run = {'tokens_per_frame_fed': model.tokens_per_frame + 1, '_typical_reply': ''}

    def make(method, m, **kwargs):
        return scheduled_session(method, m, 0, engine='fast', backend=backend, **kwargs)
    return measure_growth('live', model, None, embeds, run, {}, minutes=minutes,
                          fps=args.fps, probe_frames=6, make=make)


if __name__ == '__main__':
    sys.exit(main())
