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
pre-encoded frames; the vision encoder
runs once per frame and is timed on its own. LIVE's end-to-end rate is also measured through
``StreamPipeline`` (encoder thread in parallel with the LLM) when the engine provides it.

Cost growth over stream length (1, 10, 60 minutes of 2 fps stream time) is measured, not
extrapolated, at those stream positions: the session is primed (one prefill, like the engine's
context rebuild) with the history the method would hold there under the bounded-context policy
(computed from the method's measured tokens per frame), then the next frames are timed. The
amortised cost of the periodic rebuild (one prefill of the rebuild prompt every
``(bound - rebuild) / tokens_per_frame`` frames) is timed too and added.
"""

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time

from live_ros.config import resolve_model_path

from live_ros.streaming.backend import ENGINES
from live_ros.streaming.baselines import make_session, METHODS

PAPER_FPS = {'live': 13.5, 'per_frame': 7.5, 'interleaved': 1.5}
PAPER_MEMORY_GB = {'live': 18.2, 'per_frame': 24.9, 'interleaved': 34.4}
DEFAULT_QUESTION = 'What do you see right now?'
GROWTH_MINUTES = (1, 10, 60)
ENGINE_KEYS = ('llm_fps', 'silent_fps', 'response_tokens_per_s', 'frame_latency_p50_s',
               'frame_latency_p99_s', 'query_ttft_s', 'responses')


def bench_session(method, model, **kwargs):
    """Return a fresh session of one method; per-frame as live-bench's stand-in."""
    if method == 'per_frame':
        kwargs['frame_decision'] = True
    return make_session(method, model, **kwargs)


class PeakMemory:
    """Peak resident memory (CPU) or peak allocated CUDA memory while a block runs.

    RSS is sampled every 20 ms because the process-wide ``ru_maxrss`` cannot be reset between
    methods; CUDA uses torch's own peak counter.
    """

    def __init__(self, device):
        self.device = str(device)
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        import torch
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            import psutil
            proc = psutil.Process()

            def sample():
                while not self._stop.is_set():
                    self.peak_bytes = max(self.peak_bytes, proc.memory_info().rss)
                    self._stop.wait(0.02)
            self.peak_bytes = proc.memory_info().rss
            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
        return False

    @property
    def kind(self):
        """What the number means."""
        return 'cuda_max_allocated' if self.device.startswith('cuda') else 'process_rss'


def percentile(values, q):
    """Pick the nearest-rank value at ``q`` percent (no interpolation), for small samples."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[k]


def synthetic_frames(seconds, fps=2.0, seed=200_000, size=224):
    """Render a held-out synthetic-world clip: ``[(t, rgb)]`` on the fps grid."""
    from live_ros.data.synthetic import SyntheticWorld
    world = SyntheticWorld(seed, size=size)
    n = int(math.floor(seconds * fps + 1e-6)) + 1
    return [(i / fps, world.render(i / fps)) for i in range(n)]


def encode_all(model, frames):
    """Encode every frame once (vision + connector); return embeddings and per-frame times."""
    import torch
    embeds, times = [], []
    for _, rgb in frames:
        start = time.perf_counter()
        e = model.encode_images([rgb])[0]
        if e.device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        embeds.append(e)
    return embeds, times


def run_stream(method, model, frames, embeds, question, question_time, session_kwargs):
    """Stream pre-encoded frames through one method; return its measurements."""
    import torch
    first_token = {}

    def on_token(query_id, partial, stream_time):
        first_token.setdefault(query_id, time.perf_counter())

    session = bench_session(method, model, on_token=on_token, **session_kwargs)
    latencies, responses, answer = [], [], None
    silent, speaking = [], []   # frame latencies without / with a response of their own
    cache_after = []
    cuda = model.device.type == 'cuda'
    with PeakMemory(model.device) as mem:
        wall = time.perf_counter()
        asked = False
        for (t, _), e in zip(frames, embeds):
            start = time.perf_counter()
            out = session.push_frame(e, t)
            if cuda:
                torch.cuda.synchronize()
            latencies.append(time.perf_counter() - start)
            (speaking if out else silent).append((latencies[-1], out))
            responses += out
            cache_after.append(session.cache_tokens)
            if not asked and question and t >= question_time:
                asked = True
                ask_at = time.perf_counter()
                query_id = session.ask(question, t)
                out = session.take_responses() + session.flush_queries()
                done = time.perf_counter()
                answers = [r for r in out if r.query_id == query_id]
                responses += [r for r in out if r.query_id != query_id]
                if answers:
                    r = answers[0]
                    ttft = first_token.get(query_id, done) - ask_at
                    answer = {'question': question, 'stream_time': t, 'text': r.text,
                              'ttft_s': ttft, 'total_s': done - ask_at,
                              'tokens': len(r.token_ids)}
        wall = time.perf_counter() - wall
    spoken = [r for r in responses if r.query_id == 0]
    silent_s = statistics.fmean(lat for lat, _ in silent) if silent else None
    # decoding time = a speaking frame's latency beyond a silent frame's
    decode_s = sum(lat - (silent_s or 0.0) for lat, _ in speaking)
    decoded = sum(len(r.token_ids) for _, out in speaking for r in out)
    return {
        'method': method,
        'frames': len(frames),
        'llm_wall_s': wall,
        'llm_fps': len(frames) / wall if wall > 0 else None,
        'frame_latency_p50_s': percentile(latencies, 50),
        'frame_latency_p99_s': percentile(latencies, 99),
        'frame_latency_mean_s': statistics.fmean(latencies) if latencies else None,
        'silent_frames': len(silent),
        'silent_fps': 1.0 / silent_s if silent_s else None,
        'response_tokens_per_s': decoded / decode_s if decode_s > 0 and decoded else None,
        'responses': len(spoken),
        'response_tokens': sum(len(r.token_ids) for r in spoken),
        'sample_responses': [{'t': r.stream_time, 'text': r.text} for r in spoken[:3]],
        'query': answer,
        'query_ttft_s': answer['ttft_s'] if answer else None,
        'cache_tokens_final': session.cache_tokens,
        'cache_tokens_max': session.max_cache_tokens,
        'rebuilds': session.rebuilds,
        'context_bound': session.context_bound,
        'tokens_per_frame_fed': _tokens_per_frame(cache_after, session),
        'peak_memory_bytes': mem.peak_bytes,
        'peak_memory_kind': mem.kind,
        '_typical_reply': statistics.mode([r.text for r in spoken]) if spoken else '',
    }


def _tokens_per_frame(cache_after, session):
    """Mean cache growth per frame over the run (rebuild steps excluded)."""
    steps = [b - a for a, b in zip(cache_after, cache_after[1:]) if b >= a]
    return statistics.fmean(steps) if steps else float(session.model.tokens_per_frame + 1)


def run_pipeline(model, frames, session_kwargs, queue_size=8):
    """LIVE end to end through StreamPipeline (encoder thread + LLM thread), if available.

    The pipeline runs without dropping (``drop_frames=False``: submit blocks while its queue
    is full), so every frame is decoded and the rate measured is its throughput.
    """
    try:
        from live_ros.streaming.pipeline import StreamPipeline
    except ImportError as exc:
        return {'available': False, 'reason': f'{type(exc).__name__}: {exc}'}
    from live_ros.streaming.session import StreamingSession
    session = StreamingSession(model, **session_kwargs)
    pipe = StreamPipeline(model, session, queue_size=queue_size, drop_frames=False)
    try:
        start = time.perf_counter()
        for t, rgb in frames:
            pipe.submit_frame(rgb, t)
        idle = pipe.wait_idle(timeout=1200)
        wall = time.perf_counter() - start
        stats = pipe.stats()
    finally:
        pipe.close(timeout=10.0)
    decoded = int(stats.get('frames_decoded', 0))
    return {'available': True, 'completed': bool(idle), 'wall_s': wall,
            'fps': decoded / wall if wall else None,
            'stats': {k: v for k, v in stats.items() if isinstance(v, (int, float, str))}}


def _prime(session, method, embeds, target_tokens, reply_text):
    """Fill a fresh session's cache with ``target_tokens`` of the method's own history.

    The history is built the way the engine rebuilds its context (template encoder, one
    prefill): frames cycled from the clip, each followed by the method's turn (per-frame: the
    empty reply; interleaved: its typical reply; live: nothing).
    """
    import torch
    enc = session.enc
    frames = []
    i = 0
    while enc.fed + enc.unfed < target_tokens:
        e = embeds[i % len(embeds)]
        enc.frame()
        frames.append(e)
        session.history.add_frame(e)
        if method == 'per_frame':
            enc.assistant_prefix()
            enc.assistant_empty()
        elif method == 'interleaved':
            enc.assistant_prefix()
            enc.assistant_text(reply_text)
        i += 1
    start = time.perf_counter()
    session.load_context(enc, frames)
    if session.model.device.type == 'cuda':
        torch.cuda.synchronize()
    session.frame_index = i - 1
    session.last_frame_time = (i - 1) / session.model.cfg.fps
    return time.perf_counter() - start, i


def cache_at(frames_elapsed, tokens_per_frame, prompt_tokens, bound, rebuild_target):
    """Cache tokens and rebuild count after ``frames_elapsed`` frames under the bound policy.

    Mirrors streaming/context.py: append until the next frame would not fit the bound, then
    rebuild to (at most) ``rebuild_target`` tokens and continue.
    """
    cache, rebuilds = float(prompt_tokens), 0
    room = bound - 1
    if cache + frames_elapsed * tokens_per_frame <= room:
        return int(cache + frames_elapsed * tokens_per_frame), 0
    first = int((room - cache) // tokens_per_frame)
    rest = frames_elapsed - first
    per_cycle = max(1, int((room - rebuild_target) // tokens_per_frame))
    rebuilds = 1 + (rest - 1) // per_cycle if rest > 0 else 0
    into = (rest - 1) % per_cycle + 1 if rest > 0 else 0
    return int(rebuild_target + into * tokens_per_frame), rebuilds


def growth(method, model, frames, embeds, run, session_kwargs, minutes=GROWTH_MINUTES,
           fps=2.0, probe_frames=6, make=None):
    """Per-frame cost at stream positions of 1, 10, 60 minutes (see module docstring).

    ``make(method, model, **kwargs)`` builds the sessions (default: ``bench_session``).
    """
    make = make or bench_session
    import torch
    out = []
    probe = make(method, model, **session_kwargs)
    bound = probe.context_bound
    rebuild_target = int(getattr(probe.policy, 'rebuild_target', bound // 2))
    probe.enc.flush()
    prompt_tokens = len(probe.enc.ids)
    tpf = run['tokens_per_frame_fed']
    per_cycle = max(1, int((bound - 1 - rebuild_target) // tpf))
    rebuild_s = None
    for m in minutes:
        n = int(m * 60 * fps)
        tokens, rebuilds = cache_at(n, tpf, prompt_tokens, bound, rebuild_target)
        session = make(method, model, **session_kwargs)
        prime_s, primed = _prime(session, method, embeds, tokens, run['_typical_reply'])
        if rebuild_s is None and tokens >= rebuild_target:
            rebuild_s = prime_s * rebuild_target / max(1, session.cache_tokens)
        lat = []
        for k in range(probe_frames):
            e = embeds[(primed + k) % len(embeds)]
            start = time.perf_counter()
            session.push_frame(e, (primed + k) / fps)
            if model.device.type == 'cuda':
                torch.cuda.synchronize()
            lat.append(time.perf_counter() - start)
        steady = statistics.median(lat)
        amortised = (rebuild_s / per_cycle) if (rebuilds and rebuild_s) else 0.0
        out.append({
            'stream_minutes': m, 'frames': n, 'cache_tokens': int(session.cache_tokens),
            'rebuilds_so_far': rebuilds, 'frame_latency_median_s': steady,
            'frame_latency_max_s': max(lat), 'rebuild_amortised_s': amortised,
            'fps': 1.0 / (steady + amortised),
            'unbounded_cache_tokens': int(prompt_tokens + n * tpf),
        })
    return {'bound': bound, 'rebuild_target': rebuild_target, 'frames_per_rebuild': per_cycle,
            'rebuild_prefill_s': rebuild_s, 'points': out}


def plot(result, path):
    """Write a PNG: FPS per method, and per-frame cost over stream length."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    methods = [m for m in METHODS if m in result['methods']]
    colours = dict(zip(METHODS, ('tab:green', 'tab:orange', 'tab:red')))  # same in every panel
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    fps = [result['methods'][m]['end_to_end_fps'] for m in methods]
    axes[0].bar(methods, fps, color=[colours[m] for m in methods])
    axes[0].set_ylabel('frames per second (encoder + LLM)')
    axes[0].set_title(f'{result["stream_seconds"]:g} s stream, {result["device"]}')
    for m in methods:
        pts = result['methods'][m].get('growth', {}).get('points', [])
        if pts:
            xs = [p['stream_minutes'] for p in pts]
            axes[1].plot(xs, [1000 * (p['frame_latency_median_s'] + p['rebuild_amortised_s'])
                              for p in pts], marker='o', label=m, color=colours[m])
            axes[2].plot(xs, [p['cache_tokens'] for p in pts], marker='o', label=m,
                         color=colours[m])
    axes[1].set_xscale('log')
    axes[1].set_xlabel('stream position (minutes at 2 fps)')
    axes[1].set_ylabel('LLM ms per frame (incl. amortised rebuild)')
    axes[1].legend()
    axes[2].set_xscale('log')
    axes[2].set_xlabel('stream position (minutes at 2 fps)')
    axes[2].set_ylabel('KV cache tokens (bounded context)')
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def load_model(spec, device=None, engine=None):
    """Load a model dir or preset through the engine (``engine``: the config override)."""
    from live_ros.model import load_live_model
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
        if pipe.get('available') and pipe.get('fps'):
            live = result['methods']['live']
            live['end_to_end_fps_sequential'] = live['end_to_end_fps']
            live['end_to_end_fps'] = pipe['fps']
            live['end_to_end_note'] = 'StreamPipeline: encoder thread parallel to the LLM'
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
    parser.add_argument('--out', default='bench_out', help='output dir (JSON + PNG)')
    args = parser.parse_args(argv)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = resolve_model_path(args.model)
    model = load_model(spec, device=args.device, engine='eager')
    minutes = tuple(float(x) for x in args.growth_minutes.split(',') if x.strip())
    result = bench(model, seconds=args.seconds, methods=tuple(args.methods.split(',')),
                   question=args.question, question_time=args.question_time,
                   growth_minutes=minutes, probe_frames=args.probe_frames,
                   context_budget=args.context_budget,
                   max_new_tokens=args.max_new_tokens, pipeline=not args.no_pipeline,
                   engines=tuple(args.engines.split(',')))
    result['model'] = spec
    result['command'] = 'live-bench ' + ' '.join(argv if argv is not None else sys.argv[1:])
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, 'bench.json')
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2, default=str)
    png_path = plot(result, os.path.join(args.out, 'bench.png'))
    print(table(result))
    print(f'live-bench: wrote {json_path} and {png_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
