"""Several cameras on one model in real time: does each keep up, and at what cost.

Each camera is a StreamPipeline of the one model (its own session and KV cache), set up as
live_node sets it up (frames dropped when the model falls behind, ``queue_size`` 1 by default);
frames of a held-out synthetic world (a different world per camera) are submitted on their
due times, the cameras staggered within a frame period as real cameras are. The report per
camera: frames offered, decoded and dropped, decoded FPS, lag (seconds from submit to the
model having seen the frame; mean and max over the run) and responses; in total: FPS and
the share of frames used.
"""

from __future__ import annotations

import statistics
import threading
import time

from live_ros.benchmark.streams import synthetic_frames

#: Seed of camera 0's world; camera k watches world CAMERA_SEED + k.
CAMERA_SEED = 200_500


def run_cameras(model, cameras: int, seconds: float = 30.0, fps: float | None = None,
                queue_size: int = 1, sample_s: float = 0.1, make_session=None,
                batch: bool = True, **session_kwargs) -> dict:
    """Stream ``cameras`` synthetic cameras at ``fps`` through one model; return the report.

    ``batch``: the cameras' waiting frame and decode steps share forwards (camera_rows.py), as
    live_node's ``batch_cameras``; needs the fast engine. ``make_session(rows)``: each
    camera's StreamingSession on those rows (None: not batched), e.g. a benchmark's scheduled
    decisions (default: the model's own settings and ``session_kwargs``).
    """
    from live_ros.streaming.camera_rows import CameraRows
    from live_ros.streaming.pipeline import StreamPipeline
    fps = fps or model.cfg.fps
    clips = [synthetic_frames(seconds, fps, seed=CAMERA_SEED + k) for k in range(cameras)]
    rows = CameraRows(model, cameras) if batch and cameras > 1 else None
    pipes = [StreamPipeline(model, make_session(rows), queue_size=queue_size) if make_session
             else StreamPipeline.for_model(model, queue_size=queue_size, rows=rows,
                                           **session_kwargs)
             for _ in range(cameras)]
    lags = [[] for _ in range(cameras)]
    done = threading.Event()

    def sample():   # lag as the node's /diagnostics sees it
        while not done.wait(sample_s):
            for k, pipe in enumerate(pipes):
                lags[k].append(float(pipe.stats()['lag_s'] or 0.0))

    sampler = threading.Thread(target=sample, name='bench-lag', daemon=True)
    schedule = sorted((t + k / (fps * cameras), k, i)
                      for k, clip in enumerate(clips) for i, (t, _) in enumerate(clip))
    try:
        sampler.start()
        start = time.perf_counter()
        for due, k, i in schedule:
            wait = start + due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            t, rgb = clips[k][i]
            pipes[k].submit_frame(rgb, t)
        idle = all(pipe.wait_idle(timeout=60) for pipe in pipes)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        stats = [pipe.stats() for pipe in pipes]
    finally:
        done.set()
        for pipe in pipes:
            pipe.close(timeout=10.0)
    per_camera = []
    for k, s in enumerate(stats):
        offered = len(clips[k])
        per_camera.append({
            'camera': k, 'frames_offered': offered, 'frames_decoded': s['frames_decoded'],
            'frames_dropped': s['frames_dropped'], 'fps': s['frames_decoded'] / seconds,
            'used_share': s['frames_decoded'] / offered, 'responses': s['responses'],
            'lag_mean_s': statistics.fmean(lags[k]) if lags[k] else None,
            'lag_max_s': max(lags[k]) if lags[k] else None, 'errors': s['errors']})
    decoded = sum(c['frames_decoded'] for c in per_camera)
    offered = sum(c['frames_offered'] for c in per_camera)
    return {'cameras': cameras, 'fps_per_camera': fps, 'seconds': seconds,
            'batched': rows is not None,
            'batched_forwards': rows.batched_forwards if rows else 0,
            'batched_steps': rows.batched_steps if rows else 0,
            'wall_s': wall, 'completed': bool(idle), 'total_fps': decoded / seconds,
            'used_share': decoded / offered if offered else None,
            'lag_max_s': max((c['lag_max_s'] or 0.0) for c in per_camera),
            'per_camera': per_camera}


def cameras_table(results: list[dict]) -> str:
    """Markdown table: one row per camera count, then the per-camera rows."""
    lines = ['| cameras | total FPS | frames used | max lag (s) | per camera: FPS / used / '
             'mean lag (s) / responses |', '|---|---|---|---|---|']
    for r in results:
        cams = '; '.join(f'{c["fps"]:.2f} / {c["used_share"]:.0%} / '
                         f'{c["lag_mean_s"] or 0:.2f} / {c["responses"]}'
                         for c in r['per_camera'])
        batched = f', batched ({r["batched_steps"]} steps)' if r.get('batched') else ''
        lines.append(f'| {r["cameras"]} x {r["fps_per_camera"]:g} fps{batched} | '
                     f'{r["total_fps"]:.2f} | '
                     f'{r["used_share"]:.0%} | {r["lag_max_s"]:.2f} | {cams} |')
    return '\n'.join(lines)
