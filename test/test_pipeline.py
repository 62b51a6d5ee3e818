"""StreamPipeline: threaded == sequential, bounded lag with counted drops, reset, close."""

import threading
import time

import pytest

from live_ros.streaming.pipeline import StreamPipeline
from live_ros.streaming.session import StreamingSession
from live_ros.testing.tiny_models import build_tiny_live_model
from engine_helpers import random_frames

CONTRACT_KEYS = {'frames_received', 'frames_encoded', 'frames_dropped', 'lag_s', 'cache_tokens',
                 'last_latency_s', 'device', 'errors'}


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return build_tiny_live_model(tmp_path_factory.mktemp('tiny'))[0]


def summary(responses):
    return [(r.query_id, r.frame_index, r.stream_time, r.token_ids) for r in responses]


def test_threaded_equals_sequential(model):
    video = random_frames(16)
    questions = {5: ('What am I doing?', 2.2), 11: ('Where is the cup?', 5.5)}
    sequential = StreamingSession(model, max_new_tokens=3)
    for i, frame in enumerate(video):
        if i in questions:
            sequential.ask(*questions[i])
        sequential.push_frame(model.encode_images([frame])[0], i * 0.5)
    got = []
    pipe = StreamPipeline(model, StreamingSession(model, max_new_tokens=3), queue_size=3,
                          batch_size=4, drop_frames=False, on_response=got.append)
    try:
        for i, frame in enumerate(video):
            if i in questions:
                pipe.submit_query(*questions[i])
            pipe.submit_frame(frame, i * 0.5)
        assert pipe.wait_idle(120)
        stats = pipe.stats()
    finally:
        assert pipe.close()
    assert stats['frames_dropped'] == 0 and stats['frames_encoded'] == 16
    assert stats['errors'] == 0 and CONTRACT_KEYS <= set(stats)
    assert stats['encode_batches'] <= 16
    assert summary(got) == summary(sequential.responses)
    assert {r.query_id for r in got} >= {1, 2}


def test_slow_decoder_keeps_lag_bounded_and_counts_drops(model):
    # Speaking at every frame with long answers makes decoding far slower than encoding.
    session = StreamingSession(model, max_new_tokens=25, response_threshold=1.01)
    got = []
    queue_size, batch = 3, 2
    pipe = StreamPipeline(model, session, queue_size=queue_size, batch_size=batch,
                          on_response=got.append)
    video = random_frames(60, seed=1)
    try:
        for i, frame in enumerate(video):
            pipe.submit_frame(frame, i * 0.5)
        assert pipe.wait_idle(300)
        stats = pipe.stats()
    finally:
        assert pipe.close()
    assert stats['frames_received'] == 60
    assert stats['frames_dropped'] > 0
    assert stats['frames_decoded'] + stats['frames_dropped'] == 60
    # Waiting frames never exceed the two buffers plus the batch and frame in flight.
    assert stats['max_backlog'] <= 2 * queue_size + batch + 1
    times = [r.stream_time for r in got]
    assert times == sorted(times) and len(times) == stats['frames_decoded']
    assert times[-1] == 59 * 0.5  # the newest frames are the ones kept


@pytest.mark.parametrize('max_age', [None, 1.0])
def test_stale_encoded_frames_are_skipped_for_newer_ones(model, max_age):
    # Frames bounded is not seconds bounded: behind long answers, old encoded frames give way.
    session = StreamingSession(model, max_new_tokens=25, response_threshold=1.01)
    got = []
    pipe = StreamPipeline(model, session, queue_size=3, batch_size=2, on_response=got.append,
                          max_frame_age_s=max_age)
    try:
        for i, frame in enumerate(random_frames(40, seed=2)):
            pipe.submit_frame(frame, i * 0.5)
            time.sleep(0.02)  # a camera paces its frames; decoding a response takes longer
        assert pipe.wait_idle(300)
        stats = pipe.stats()
    finally:
        assert pipe.close()
    assert stats['frames_decoded'] + stats['frames_dropped'] == 40
    assert got[-1].stream_time == 39 * 0.5
    if max_age is None:
        assert stats['frames_stale'] == 0
    else:
        assert stats['frames_stale'] > 0
        assert stats['frames_stale'] <= stats['frames_dropped']


def test_reset_clears_and_pipeline_keeps_working(model):
    got = []
    pipe = StreamPipeline(model, StreamingSession(model, max_new_tokens=2), queue_size=4,
                          drop_frames=False, on_response=got.append)
    try:
        for i, frame in enumerate(random_frames(4)):
            pipe.submit_frame(frame, i * 0.5)
        assert pipe.wait_idle(60)
        assert pipe.stats()['cache_tokens'] > 0
        pipe.reset()
        assert pipe.stats()['cache_tokens'] == 0
        pipe.submit_frame(random_frames(1)[0], 0.0)
        assert pipe.wait_idle(60)
        assert pipe.session.frame_index == 0 and pipe.stats()['backlog'] == 0
    finally:
        assert pipe.close()
    with pytest.raises(RuntimeError):
        pipe.submit_frame(random_frames(1)[0], 1.0)


def test_query_answered_when_the_stream_pauses(model):
    answered = threading.Event()
    got = []

    def on_response(r):
        got.append(r)
        if r.query_id:
            answered.set()

    session = StreamingSession(model, max_new_tokens=2, response_threshold=0.0)
    pipe = StreamPipeline(model, session, idle_answer_s=0.2, drop_frames=False,
                          on_response=on_response)
    try:
        pipe.submit_frame(random_frames(1)[0], 0.0)
        query_id = pipe.submit_query('What am I doing?', 3.0)  # no frame at or after 3.0 comes
        assert answered.wait(60)
    finally:
        assert pipe.close()
    (r,) = [r for r in got if r.query_id]
    assert r.query_id == query_id and r.frame_index == 0 and r.stream_time == 3.0


def test_close_mid_answer_ends_the_response_at_its_next_token(model):
    """Shutdown must not wait for max_new_tokens tokens (Ctrl-C on a loaded CPU)."""
    decoding = threading.Event()
    got = []

    def on_token(query_id, text, t):
        decoding.set()
        time.sleep(0.02)  # a slow decode step

    session = StreamingSession(model, max_new_tokens=5000, response_threshold=0.0)
    stop_ids = session.template.stop_token_ids
    session.template.stop_token_ids = frozenset()  # only the interrupt can end this answer
    try:
        pipe = StreamPipeline(model, session, drop_frames=False, on_response=got.append,
                              on_token=on_token)
        pipe.submit_frame(random_frames(1)[0], 0.0)
        assert decoding.wait(60)
        started = time.monotonic()
        assert pipe.close(timeout=5.0)
        assert time.monotonic() - started < 2.0
    finally:
        session.template.stop_token_ids = stop_ids
    (response,) = got
    assert 0 < len(response.token_ids) < 5000
    assert session.cache_tokens == session.enc.fed  # every decoded token but the last is cached


def test_cancel_query_mid_answer_and_the_stream_goes_on(model):
    decoding = threading.Event()
    got = []

    def on_token(query_id, text, t):
        if query_id:
            decoding.set()
            time.sleep(0.02)  # a slow decode step

    session = StreamingSession(model, max_new_tokens=5000, response_threshold=0.0)
    stop_ids = session.template.stop_token_ids
    session.template.stop_token_ids = frozenset()  # only the cancel can end this answer
    pipe = StreamPipeline(model, session, drop_frames=False, on_response=got.append,
                          on_token=on_token)
    try:
        pipe.submit_frame(random_frames(1)[0], 0.0)
        query_id = pipe.submit_query('What am I doing?', 0.0)
        assert decoding.wait(60)
        started = time.monotonic()
        assert pipe.cancel_query(query_id)
        assert wait_for_answer(got, query_id, timeout=10)
        assert time.monotonic() - started < 2.0
        session.template.stop_token_ids = stop_ids
        session.max_new_tokens = 4
        pipe.submit_frame(random_frames(2)[1], 0.5)
        assert pipe.wait_idle(timeout=60)
        assert not pipe.cancel_query(query_id)   # answered (cut) already
        assert pipe.stats()['errors'] == 0
    finally:
        session.template.stop_token_ids = stop_ids
        pipe.close()
    (cut,) = [r for r in got if r.query_id == query_id]
    assert cut.cancelled and 0 < len(cut.token_ids) < 5000
    assert session.frame_index == 1 and session.cache_tokens == session.enc.fed


def wait_for_answer(got, query_id, timeout):
    """Poll the delivered responses for one query (the decoder thread appends them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.query_id == query_id for r in got):
            return True
        time.sleep(0.01)
    return False


def test_close_then_start_equals_an_unpaused_stream(model):
    """A lifecycle deactivate/activate (close, start) loses no context and no queued question."""
    def run(pause):
        got = []
        session = StreamingSession(model, max_new_tokens=3, response_threshold=0.0)
        pipe = StreamPipeline(model, session, drop_frames=False, idle_answer_s=100.0,
                              on_response=got.append, start=not pause)
        clip = random_frames(6, seed=3)
        try:
            if pause:
                with pytest.raises(RuntimeError):   # configured, not started: no frames
                    pipe.submit_frame(clip[0], 0.0)
                pipe.start()
            for i in range(3):
                pipe.submit_frame(clip[i], 0.5 * i)
            assert pipe.wait_idle(60)
            if pause:
                assert pipe.close() and not pipe.running
            query_id = pipe.submit_query('What now?', 1.0)   # waits for the next frame
            if pause:
                pipe.start()
                pipe.start()   # starting a running pipeline changes nothing
                assert pipe.running
            for i in range(3, 6):
                pipe.submit_frame(clip[i], 0.5 * i)
            assert pipe.wait_idle(60)
            return summary(got), query_id, session.cache_tokens
        finally:
            assert pipe.close()

    paused, unpaused = run(pause=True), run(pause=False)
    assert paused == unpaused
    responses, query_id, _ = paused
    assert query_id in [r[0] for r in responses]


def test_backlog_is_decoded_in_one_call_with_the_same_results(model):
    """Frames that piled up behind a slow step go to StreamingSession.push_frames together."""
    video = random_frames(8, seed=5)
    sequential = StreamingSession(model, max_new_tokens=3, response_threshold=0.9)
    for i, frame in enumerate(video):
        sequential.push_frame(model.encode_images([frame])[0], i * 0.5)
    gate, sizes, got = threading.Event(), [], []

    class GatedSession(StreamingSession):
        def push_frames(self, frames, times, *rest):
            sizes.append(len(frames))
            assert gate.wait(30)
            return super().push_frames(frames, times, *rest)

    pipe = StreamPipeline(model, GatedSession(model, max_new_tokens=3, response_threshold=0.9),
                          queue_size=8, drop_frames=False, on_response=got.append)
    try:
        pipe.submit_frame(video[0], 0.0)
        deadline = time.monotonic() + 30
        while not sizes and time.monotonic() < deadline:   # the decoder holds frame 0
            time.sleep(0.01)
        for i, frame in enumerate(video[1:], 1):
            pipe.submit_frame(frame, i * 0.5)
        while pipe.stats()['frames_encoded'] < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        gate.set()
        assert pipe.wait_idle(60)
    finally:
        assert pipe.close()
    assert sizes == [1, 7]
    assert summary(got) == summary(sequential.responses)
    assert pipe.stats()['frames_decoded'] == 8


def test_a_question_kept_past_max_query_wait_is_delivered_as_expired(model):
    """A question still queued after max_query_wait is delivered as cut 'expired'."""
    from live_ros.streaming.response import EXPIRED, Response
    got = []
    live = StreamPipeline(model, StreamingSession(model), start=False, idle_answer_s=5.0,
                          max_query_wait=0.2, on_response=got.append)
    query_id = live.submit_query('What now?', 1.0)
    live.on_token(99, 'Yes', 0.0)   # the model answers something else meanwhile ...
    time.sleep(0.3)
    live.on_response(Response('Yes.', 0.0, 0, query_id=99))   # ... and the frames' turn begins
    assert not live._take_query()
    assert [(r.query_id, r.cancelled, r.cut) for r in got[1:]] == [(query_id, True, EXPIRED)]
    assert live.queries_waiting == 0


def test_after_an_answer_frames_have_the_decoder_as_long_as_it_took(model):
    """A question flood cannot starve a live camera: answers get at most half the decoder.

    The rule itself, on a pipeline whose threads are not running: after a response (an answer
    or the model's own words) that took T seconds, the next question waits T seconds and at
    least one frame while frames keep coming; offline it never waits, and a paused camera does
    not hold questions back.
    """
    from live_ros.streaming.response import Response

    def hear(pipe, t):   # the decoder thread's frame step, on one real frame
        embeds = pipe.model.encode_images(random_frames(1))[0]
        pipe._decode([(embeds, t, None, time.perf_counter(), pipe._frames.generation)])

    def answer(pipe, query_id, seconds):
        pipe.on_token(query_id, 'Yes', 0.0)   # its first token ...
        time.sleep(seconds)
        pipe.on_token(query_id, 'Yes.', 0.0)   # ... its last ...
        pipe.on_response(Response('Yes.', 0.0, 0, query_id=query_id))
        pipe._spoke()   # ... and the decoder step that spoke ends

    live = StreamPipeline(model, StreamingSession(model), start=False, idle_answer_s=5.0)
    answer(live, 1, 0.3)
    live.submit_query('And now?', 5.0)   # held by the session until a frame at 5 s
    assert not live._take_query() and live.queries_waiting == 1   # the frames' turn
    time.sleep(0.35)
    assert not live._take_query()   # the answer's 0.3 s have passed, but no frame yet
    hear(live, 1.0)
    assert live._take_query()
    live.submit_query('And then?', 0.0)
    assert not live._take_query()   # one at a time: the session holds one to answer

    own = StreamPipeline(model, StreamingSession(model), start=False, idle_answer_s=5.0)
    answer(own, 0, 0.3)   # the model speaks on its own
    own.submit_query('And now?', 0.0)
    assert not own._take_query()   # the frames' turn too
    time.sleep(0.35)
    hear(own, 1.0)
    assert own._take_query()

    offline = StreamPipeline(model, StreamingSession(model), start=False, drop_frames=False)
    answer(offline, 1, 0.3)
    offline.submit_query('And now?', 0.0)
    assert offline._take_query()   # every question at its time

    paused = StreamPipeline(model, StreamingSession(model), start=False, idle_answer_s=0.05)
    answer(paused, 1, 0.3)
    paused.submit_query('And now?', 0.0)
    time.sleep(0.1)   # no frame for idle_answer_s: nothing to give the turn to
    assert paused._take_query()
