"""One method's stream on pre-encoded frames, and LIVE end to end through StreamPipeline.

All three methods are the sessions of live_ros.streaming.baselines (what live-eval plays too),
on the same frames; per-frame runs as live-bench's stand-in (``frame_decision``).
"""

import math
import statistics
import time

from live_ros.benchmark.memory import PeakMemory
from live_ros.streaming.baselines import make_session

#: What the engine comparison keeps of a LIVE run.
ENGINE_KEYS = ('llm_fps', 'silent_fps', 'response_tokens_per_s', 'frame_latency_p50_s',
               'frame_latency_p99_s', 'query_ttft_s', 'responses')


def bench_session(method, model, **kwargs):
    """Return a fresh session of one method; per-frame as live-bench's stand-in."""
    if method == 'per_frame':
        kwargs['frame_decision'] = True
    return make_session(method, model, **kwargs)


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
