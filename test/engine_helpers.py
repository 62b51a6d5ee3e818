"""Helpers for tests that run several streaming engines of one model at once."""

import threading

import numpy as np


def random_frames(n, seed=0):
    """Return ``n`` small random RGB uint8 frames (a camera the tiny model can encode)."""
    rng = np.random.default_rng(seed)
    return [(rng.random((24, 40, 3)) * 255).astype(np.uint8) for _ in range(n)]


def summary(responses):
    """Return what must match between two runs of a stream: ids, timing and words."""
    return [(r.query_id, r.frame_index, r.stream_time, r.token_ids, r.text) for r in responses]


def feed_at_once(pipes, feed, timeout=120.0):
    """Run ``feed(camera)`` for every pipeline in its own thread, as cameras do, all at once.

    Waits until every pipeline is idle, closes them all, and returns each one's stats.
    """
    try:
        feeders = [threading.Thread(target=feed, args=(cam,)) for cam in pipes]
        for thread in feeders:
            thread.start()
        for thread in feeders:
            thread.join(timeout)
        assert all(pipe.wait_idle(timeout) for pipe in pipes.values())
        return {cam: pipe.stats() for cam, pipe in pipes.items()}
    finally:
        assert all([pipe.close() for pipe in pipes.values()])
