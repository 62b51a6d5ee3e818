#!/usr/bin/env python3
"""Per-frame latency of the LIVE engine on this machine: sequential vs parallel (threaded).

Builds a small random model (SigLIP-like tower at 224 px / patch 16, 4 x 192; Llama 4 x 256,
10 frame tokens) in a temp dir and streams random frames through
  * sequential: encode (vision + connector) then decode (LLM frame step) in one thread;
  * parallel: StreamPipeline (encoder thread, batched -> FIFO -> decoder thread), no drops.
Two workloads: a silent stream (the assistant never speaks: per-frame cost is one encode plus
one LLM step of 11 tokens) and a talking stream (it answers at every frame, max 8 tokens).
Prints numbers only; nothing is asserted.

    .venv/bin/python scripts/latency_engine.py [--frames 60] [--threads 2]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'test')]

from live_ros.model import LiveModel  # noqa: E402
from live_ros.streaming.pipeline import StreamPipeline  # noqa: E402
from live_ros.streaming.session import StreamingSession  # noqa: E402
import tiny_models  # noqa: E402


def build(root):
    """Save the benchmark backbones and load a LiveModel on CPU float32."""
    tiny_models._quiet_transformers()
    llm, vision = os.path.join(root, 'llm'), os.path.join(root, 'vision')
    tiny_models.save_tiny_llama(llm, hidden=256, layers=4)
    tiny_models.save_tiny_siglip(vision, hidden=192, layers=4, image_size=224, patch_size=16)
    cfg = tiny_models.tiny_config(root).replace(llm=llm, vision=vision, frame_size=224)
    return LiveModel.from_config(cfg, device='cpu', dtype=torch.float32)


def silence(model):
    """Make every frame embedding the same 'silent' vector (encode cost unchanged)."""
    silent, _ = tiny_models.steer_frame_decisions(model)
    last = model.connector[2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(silent[0])


def sequential(model, frames, **session_kw):
    """Encode then decode each frame in one thread; return per-frame ms (enc, dec, total)."""
    session = StreamingSession(model, **session_kw)
    enc, dec = [], []
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        embeds = model.encode_images([frame])[0]
        t1 = time.perf_counter()
        session.push_frame(embeds, i * 0.5)
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
    enc, dec = np.array(enc[2:]) * 1e3, np.array(dec[2:]) * 1e3  # skip warm-up
    return enc.mean(), dec.mean(), (enc + dec).mean(), len(session.responses)


def parallel(model, frames, **session_kw):
    """Push all frames through the threaded pipeline; return ms per frame (throughput)."""
    session = StreamingSession(model, **session_kw)
    pipe = StreamPipeline(model, session, queue_size=8, batch_size=4, drop_frames=False)
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        pipe.submit_frame(frame, i * 0.5)
    pipe.wait_idle(timeout=600)
    elapsed = time.perf_counter() - t0
    stats = pipe.stats()
    pipe.close()
    return elapsed / len(frames) * 1e3, stats


def main():
    """Run both workloads sequentially and in parallel; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: all cores)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count())
    rng = np.random.default_rng(0)
    frames = [(rng.random((360, 640, 3)) * 255).astype(np.uint8) for _ in range(args.frames)]
    with tempfile.TemporaryDirectory() as root:
        model = build(root)
        silence(model)
        print(f'# {torch.get_num_threads()} torch threads, {os.cpu_count()} cores, '
              f'{args.frames} frames 640x360 -> 224, {model.tokens_per_frame} tokens/frame')
        workloads = {'silent': dict(max_new_tokens=8),
                     'talking': dict(max_new_tokens=8, response_threshold=1.01)}
        for name, kw in workloads.items():
            enc, dec, total, n = sequential(model, frames, **kw)
            per_frame, stats = parallel(model, frames, **kw)
            print(f'{name:8s} sequential: encode {enc:6.1f} ms + decode {dec:6.1f} ms = '
                  f'{total:6.1f} ms/frame ({1e3 / total:5.1f} fps, {n} responses)')
            print(f'{name:8s} parallel:   {per_frame:6.1f} ms/frame ({1e3 / per_frame:5.1f} fps, '
                  f'{stats["encode_batches"]} encode batches, {stats["responses"]} responses, '
                  f'speed-up x{total / per_frame:.2f})')


if __name__ == '__main__':
    main()
