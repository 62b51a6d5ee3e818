"""Cameras' frame steps in one forward (camera_rows.py) == each camera's steps one by one."""

import threading
import time

import pytest
import torch

from live_ros.streaming.backend import FastBackend, make_backend
from live_ros.streaming.camera_rows import CameraRows, Step
from live_ros.streaming.pipeline import StreamPipeline
from live_ros.streaming.session import StreamingSession
from live_ros.testing.tiny_models import build_tiny_live_model, steer_frame_decisions
from engine_helpers import feed_at_once, random_frames, summary

BOUND = 600


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return build_tiny_live_model(tmp_path_factory.mktemp('tiny'))[0]


def frame_step(model, seed):
    """Return the ids and embeddings [1, n, D] of a frame step: an interval token, a frame."""
    ids = [model.interval_token_id] + [model.frame_token_id] * model.tokens_per_frame
    frame = torch.randn(model.tokens_per_frame, model.base_lm.config.hidden_size,
                        generator=torch.Generator().manual_seed(seed))
    return ids, model.embed(torch.tensor([ids]), frame, frame_tokens=model.tokens_per_frame)


def assert_same_cache(row, alone):
    assert row.length == alone.length
    for a, b in zip(row.cache.layers, alone.cache.layers):
        assert int(a.cumulative_length) == int(b.cumulative_length) == alone.length
        torch.testing.assert_close(a.keys[:, :, :alone.length], b.keys[:, :, :alone.length])
        torch.testing.assert_close(a.values[:, :, :alone.length],
                                   b.values[:, :, :alone.length])


def decode_step(model, token):
    """Return the ids and embeddings [1, 1, D] of a decode step (one token of an answer)."""
    return [token], model.embed(torch.tensor([[token]]))


@torch.no_grad()
def test_a_batched_step_equals_each_row_alone(model):
    """Rows at different lengths, all rows or some, frame and decode steps mixed: as alone.

    Row 2 attends past the first 256-slot view; a decode step is padded to a frame step's
    length.
    """
    rows = CameraRows(model, 3)
    batched = [rows.backend(BOUND) for _ in range(3)]
    alone = [FastBackend(model, BOUND) for _ in range(3)]
    for k, n in enumerate((5, 60, 270)):
        history = [7 + i % 40 for i in range(n)]
        batched[k].feed(history)
        alone[k].feed(history)
    plans = [{0: 'frame', 1: 'frame', 2: 'frame'}, {0: 'frame', 2: 'decode'},
             {1: 'decode', 2: 'decode'}, {0: 'decode', 1: 'frame', 2: 'decode'}]
    for number, plan in enumerate(plans):
        steps = {k: frame_step(model, seed=10 * number + k) if kind == 'frame'
                 else decode_step(model, 11 + number + k) for k, kind in plan.items()}
        got = rows.forward([Step(batched[k], embeds) for k, (_, embeds) in steps.items()])
        for (k, (ids, embeds)), logits in zip(steps.items(), got):
            batched[k].length += len(ids)
            with alone[k].turns:
                expected = alone[k]._forward(embeds, 1, True)
            alone[k].length += len(ids)
            assert logits.shape == expected.shape == (1, model.base_lm.config.vocab_size)
            torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    for row, single in zip(batched, alone):
        assert_same_cache(row, single)


def test_rows_refuse_what_they_cannot_hold(model):
    rows = CameraRows(model, 1)
    rows.backend(BOUND)
    with pytest.raises(ValueError, match='all 1 camera rows are taken'):
        rows.backend(BOUND)
    with pytest.raises(ValueError, match='one context_budget'):
        CameraRows(model, 2).backend(BOUND).rows.backend(BOUND + 1)
    with pytest.raises(ValueError, match="need engine 'fast'"):
        make_backend(model, 'eager', BOUND, rows=CameraRows(model, 2))


def wait_in_line(lock, waiting, timeout=60.0):
    """Wait until ``waiting`` threads queue behind the holder of FairLock ``lock``."""
    deadline = time.monotonic() + timeout
    while lock._next_ticket - lock._serving - 1 < waiting:
        assert time.monotonic() < deadline, 'the cameras did not queue at the model'
        time.sleep(0.001)


@pytest.fixture()
def steered(tmp_path):
    model = build_tiny_live_model(tmp_path)[0]
    return (model, *steer_frame_decisions(model))


@torch.no_grad()
def test_sessions_on_rows_speak_as_each_alone(steered):
    """Three cameras, their frames held at the model so their steps batch: same responses.

    Camera a speaks at frames 2 and 5, b at 3 and is asked at 4, c stays silent: the rows'
    lengths drift apart, and steps of different lengths (right after an answer) run apart.
    """
    model, silent, speak = steered
    plan = {'a': {2, 5}, 'b': {3}, 'c': set()}
    asks = {'b': {4: 'What is on the table?'}}
    settings = dict(max_new_tokens=5, engine='fast', context_budget=BOUND)

    def stream(session, cam, i):
        for at, question in asks.get(cam, {}).items():
            if at == i:
                session.ask(question, i * 0.5 - 0.1)
        session.push_frame(speak if i in plan[cam] else silent, i * 0.5)

    alone = {}
    for cam in plan:
        session = StreamingSession(model, **settings)
        for i in range(8):
            stream(session, cam, i)
        alone[cam] = session
    rows = CameraRows(model, len(plan))
    cams = {cam: StreamingSession(model, rows=rows, **settings) for cam in plan}
    for i in range(8):
        threads = [threading.Thread(target=stream, args=(cams[cam], cam, i)) for cam in plan]
        with rows.turns:   # the model is busy: every camera's next forward queues
            for thread in threads:
                thread.start()
            wait_in_line(rows.turns, len(threads))
        for thread in threads:
            thread.join(60)
    for cam in plan:
        got = [(r.frame_index, r.stream_time, r.token_ids, r.query_id) for r in
               cams[cam].responses]
        assert got == [(r.frame_index, r.stream_time, r.token_ids, r.query_id)
                       for r in alone[cam].responses], cam
        assert_same_cache(cams[cam].backend, alone[cam].backend)
    assert len(cams['a'].responses) == 2 and len(cams['b'].responses) == 2
    assert rows.batched_forwards >= 4 and rows.batched_steps >= 10


def test_pipelines_on_rows_fed_at_once_speak_as_each_alone(model):
    """Two engines on rows, fed from two threads as cameras are: each stream as if alone.

    The talker speaks after every frame, the other camera decides for itself; whether a step
    batches depends on timing, the responses must not.
    """
    videos = {cam: random_frames(10, seed) for seed, cam in enumerate(('talker', 'other'))}
    settings = {'talker': dict(response_threshold=1.01), 'other': {}}
    common = dict(max_new_tokens=3, engine='fast', context_budget=BOUND)

    alone = {}
    for cam, video in videos.items():
        session = StreamingSession(model, **settings[cam], **common)
        for i, frame in enumerate(video):
            session.push_frame(model.encode_images([frame])[0], i * 0.5)
        alone[cam] = summary(session.responses)
    rows = CameraRows(model, 2)
    got = {cam: [] for cam in videos}
    pipes = {cam: StreamPipeline(model, StreamingSession(model, rows=rows, **settings[cam],
                                                         **common),
                                 queue_size=4, drop_frames=False, on_response=got[cam].append)
             for cam in videos}

    def feed(cam):
        for i, frame in enumerate(videos[cam]):
            pipes[cam].submit_frame(frame, i * 0.5)

    stats = feed_at_once(pipes, feed, timeout=60)
    for cam in pipes:
        assert stats[cam]['errors'] == 0, stats[cam]['last_error']
        assert stats[cam]['frames_decoded'] == 10
        assert summary(got[cam]) == alone[cam], cam
    assert len(got['talker']) == 10


@torch.no_grad()
def test_a_compiled_row_step_writes_into_the_shared_rows(model):
    """Compiled frame and decode steps (a CPU compile backend) on a row == the eager row."""
    rows = CameraRows(model, 2)
    compiled = rows.backend(BOUND, compile='backend:aot_eager')
    eager = FastBackend(model, BOUND)
    for backend in (compiled, eager):
        backend.feed([7 + i % 40 for i in range(30)])
    for seed in range(3):
        ids, embeds = frame_step(model, seed)
        for backend in (compiled, eager):
            backend.feed(ids, embeds[0, 1:], step=True)
    assert compiled.compiled_lengths == {model.tokens_per_frame + 1}
    assert_same_cache(compiled, eager)
    assert rows.keys[0][:, :, :compiled.length].abs().sum() > 0   # the rows hold them
