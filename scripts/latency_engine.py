#!/usr/bin/env python3
"""Per-frame latency of the LIVE engine: sequential vs parallel (threaded pipeline).

Builds a random-weight model in memory (no files, no hub) and streams random 640x360 frames:
  * sequential: encode (vision + connector) then decode (LLM frame step) in one thread;
  * parallel: StreamPipeline (encoder thread, batched -> FIFO -> decoder thread), no drops.
Two workloads: 'silent' (the assistant never speaks: per frame one encode plus one LLM step
of T + 1 tokens) and 'talking' (it answers at every frame, max 8 tokens).
Sizes: 'small' (SigLIP-like 4 x 192 at 224 px / patch 16; Llama 4 x 256) and '8b' (the real
shapes of VideoLLM-online-8B-v1+: SigLIP-large-384 + Llama-3-8B, random weights, no LoRA).
``--check`` first verifies on the device that the cached session gives the logits of one
full forward pass and that threaded == sequential responses. Each workload runs once untimed
first (warm-up over the same cache lengths). Prints numbers only.

    .venv/bin/python scripts/latency_engine.py [--frames 40] [--threads 1] [--device cpu]
    python scripts/latency_engine.py --device cuda --size 8b --check
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT]

from live_ros.model.config import preset  # noqa: E402
from live_ros.model.live_model import resolve_device_dtype  # noqa: E402
from live_ros.streaming.pipeline import StreamPipeline  # noqa: E402
from live_ros.streaming.session import StreamingSession  # noqa: E402
from live_ros.testing import tiny_models  # noqa: E402
from live_ros.testing.shapes import build_random_model, SHAPES  # noqa: E402


def build(size, device, dtype):
    """Build a random LiveModel of the given shape directly on the device (no LoRA)."""
    model, _, _ = build_random_model(size, device, dtype, cfg=preset(
        'tiny', frame_size=SHAPES[size]['vision']['image_size'], use_lora=False))
    return model


def silence(model):
    """Make every frame embedding the same 'silent' vector (encode cost unchanged)."""
    silent, _ = tiny_models.steer_frame_decisions(model)
    last = model.connector[2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(silent[0])


def sync(model):
    """Wait for queued GPU work so wall times are real."""
    if model.device.type == 'cuda':
        torch.cuda.synchronize()


def sequential(model, frames, **session_kw):
    """Encode then decode each frame in one thread; return per-frame ms (enc, dec, total)."""
    session = StreamingSession(model, **session_kw)
    enc, dec = [], []
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        embeds = model.encode_images([frame])[0]
        sync(model)
        t1 = time.perf_counter()
        session.push_frame(embeds, i * 0.5)
        sync(model)
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
    enc, dec = np.array(enc[2:]) * 1e3, np.array(dec[2:]) * 1e3  # skip warm-up
    return enc.mean(), dec.mean(), (enc + dec).mean(), session


def parallel(model, frames, **session_kw):
    """Push all frames through the threaded pipeline; return ms per frame (throughput)."""
    session = StreamingSession(model, **session_kw)
    pipe = StreamPipeline(model, session, queue_size=8, batch_size=4, drop_frames=False)
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        pipe.submit_frame(frame, i * 0.5)
    pipe.wait_idle(timeout=600)
    sync(model)
    elapsed = time.perf_counter() - t0
    stats = pipe.stats()
    pipe.close()
    return elapsed / len(frames) * 1e3, stats, session


def check(model, frames):
    """Print cache-vs-full-forward logit error and whether threaded == sequential."""
    session = StreamingSession(model, max_new_tokens=4, response_threshold=1.01,
                               record_frames=True)
    for i, frame in enumerate(frames[:6]):
        session.push_frame(frame, i * 0.5)
    session.ask('What am I doing?', 3.0)
    session.push_frame(frames[6], 3.0)
    with torch.no_grad():
        full = model(torch.tensor([session.fed_ids], device=model.device),
                     frame_embeds=torch.cat(session.fed_frames)).logits[0, -1].float()
    err = (full - session.last_logits).abs().max().item()
    same_argmax = int(full.argmax()) == int(session.last_logits.argmax())
    print(f'check: {len(session.fed_ids)} cached tokens, max |logit diff| cache vs full '
          f'forward = {err:.4g} ({model.dtype}), same argmax: {same_argmax}')
    kw = dict(max_new_tokens=4, response_threshold=0.5)
    _, _, _, seq = sequential(model, frames[:12], **kw)
    _, _, par = parallel(model, frames[:12], **kw)

    def summary(s):
        return [(r.query_id, r.frame_index, r.token_ids) for r in s.responses]
    print(f'check: threaded == sequential responses: {summary(seq) == summary(par)} '
          f'({len(seq.responses)} responses)')


def main():
    """Run both workloads sequentially and in parallel; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=40, help='frames to stream')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: all cores)')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument('--size', choices=['small', '8b'], default='small',
                        help='model size to build')
    parser.add_argument('--check', action='store_true',
                        help='first verify cache == full forward and threaded == sequential')
    args = parser.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count())
    device, dtype = resolve_device_dtype(args.device)
    rng = np.random.default_rng(0)
    frames = [(rng.random((360, 640, 3)) * 255).astype(np.uint8) for _ in range(args.frames)]
    t0 = time.perf_counter()
    model = build(args.size, device, dtype)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    print(f'# {args.size} model on {name} ({dtype}), built in {time.perf_counter() - t0:.1f} s; '
          f'{torch.get_num_threads()} torch threads, {os.cpu_count()} cores; {args.frames} '
          f'frames 640x360 -> {model.cfg.frame_size}, {model.tokens_per_frame} tokens/frame')
    if args.check:
        check(model, frames)
    silence(model)
    workloads = {'silent': dict(max_new_tokens=8),
                 'talking': dict(max_new_tokens=8, response_threshold=1.01)}
    for label, kw in workloads.items():
        # Untimed pass first: kernels are tuned per shape (cache length) on the first visit,
        # which on a GPU would otherwise bill whichever run comes first.
        sequential(model, frames, **kw)
        enc, dec, total, seq = sequential(model, frames, **kw)
        per_frame, stats, _ = parallel(model, frames, **kw)
        print(f'{label:8s} sequential: encode {enc:7.1f} ms + decode {dec:7.1f} ms = '
              f'{total:7.1f} ms/frame ({1e3 / total:6.1f} fps, {len(seq.responses)} responses)')
        print(f'{label:8s} parallel:   {per_frame:7.1f} ms/frame ({1e3 / per_frame:6.1f} fps, '
              f'{stats["encode_batches"]} encode batches, {stats["responses"]} responses, '
              f'x{total / per_frame:.2f} vs sequential)')
    if device.type == 'cuda':
        print(f'# peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB')


if __name__ == '__main__':
    main()
