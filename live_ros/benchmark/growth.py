"""Per-frame cost at stream positions of minutes, under the bounded-context policy.

Measured, not extrapolated: the session is primed (one prefill, as a context rebuild) with the
history the method would hold there, then the next frames are timed; the rebuild prefill is
timed too and amortised over the frames between rebuilds.
"""

import statistics
import time

from live_ros.benchmark.streams import bench_session

GROWTH_MINUTES = (1, 10, 60)


def _prime(session, method, embeds, target_tokens, reply_text):
    """Fill a fresh session's cache with ``target_tokens`` of the method's own history.

    The history is built the way the engine rebuilds its context (template encoder, one
    prefill): frames cycled from the clip, each followed by the method's turn (per-frame: the
    empty reply; interleaved: its typical reply; live: nothing).
    """
    import torch
    enc = session.template.encoder()
    enc.system(session.system_prompt)
    frames = []
    i = 0
    while enc.fed + enc.unfed < target_tokens:
        e = embeds[i % len(embeds)]
        enc.frame()
        frames.append(e)
        if method == 'per_frame':
            enc.assistant_prefix()
            enc.assistant_empty()
        elif method == 'interleaved':
            enc.assistant_prefix()
            enc.assistant_text(reply_text)
        i += 1
    start = time.perf_counter()
    session.prime(enc, frames, (i - 1) / session.model.cfg.fps)
    if session.model.device.type == 'cuda':
        torch.cuda.synchronize()
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
