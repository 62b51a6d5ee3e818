"""Several cameras on one model: fair turns, and each stream as if it were alone."""

import threading
import time

import pytest

from live_ros.streaming.fair_lock import FairLock, model_turns
from live_ros.streaming.pipeline import StreamPipeline
from live_ros.streaming.session import StreamingSession
from live_ros.testing.tiny_models import build_tiny_live_model
from engine_helpers import feed_at_once, random_frames, summary


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return build_tiny_live_model(tmp_path_factory.mktemp('tiny'))[0]



def test_fair_lock_serves_in_arrival_order():
    lock, order = FairLock(), []

    def take(i):
        with lock:
            order.append(i)

    lock.acquire()
    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=take, args=(i,)))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while lock._next_ticket < i + 2 and time.monotonic() < deadline:   # i is in line
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == list(range(6))
    assert model_turns(object.__new__(type('M', (), {}))) is not None


def test_cameras_on_one_model_speak_as_each_stream_alone(model):
    """Two pipelines of one model, fed at once from two threads == each session alone."""
    videos = {'front': random_frames(10, seed=0), 'rear': random_frames(10, seed=1)}
    questions = {'front': {3: 'What am I doing?'}, 'rear': {6: 'Where is the cup?'}}
    settings = dict(max_new_tokens=4, response_threshold=1.01)   # speaks after every frame
    alone = {}
    for cam, video in videos.items():
        session = StreamingSession(model, **settings)
        for i, frame in enumerate(video):
            if i in questions[cam]:
                session.ask(questions[cam][i], i * 0.5)
            session.push_frame(model.encode_images([frame])[0], i * 0.5)
        alone[cam] = session.responses
    got = {cam: [] for cam in videos}
    pipes = {cam: StreamPipeline.for_model(model, **settings, queue_size=2, batch_size=2,
                                           drop_frames=False, on_response=got[cam].append)
             for cam in videos}

    def feed(cam):
        for i, frame in enumerate(videos[cam]):
            if i in questions[cam]:
                pipes[cam].submit_query(questions[cam][i], i * 0.5)
            pipes[cam].submit_frame(frame, i * 0.5)

    stats = feed_at_once(pipes, feed)
    for cam in videos:
        assert stats[cam]['errors'] == 0, stats[cam]['last_error']
        assert summary(got[cam]) == summary(alone[cam]), cam
        assert len(got[cam]) >= 10


def test_a_long_answer_on_one_camera_does_not_stall_another(model):
    """Turns are per forward: the quiet camera's frames go between the talker's tokens."""
    talker = StreamPipeline.for_model(model, max_new_tokens=150, response_threshold=1.01,
                                      drop_frames=False, queue_size=8)
    quiet = StreamPipeline.for_model(model, max_new_tokens=60, response_threshold=0.0,
                                     drop_frames=False, queue_size=4)
    try:
        for i, frame in enumerate(random_frames(8, seed=2)):
            talker.submit_frame(frame, i * 0.5)
        deadline = time.monotonic() + 60
        while not talker.session.cache_tokens and time.monotonic() < deadline:
            time.sleep(0.001)   # the talker is decoding its first answer
        for i, frame in enumerate(random_frames(8, seed=3)):
            quiet.submit_frame(frame, i * 0.5)
        assert quiet.wait_idle(120)
        talked = talker.stats()['responses']
        assert quiet.stats()['frames_decoded'] == 8
        # 8 answers of 150 tokens are 1200 forwards; the quiet camera needed a handful
        assert talked < 8, 'the quiet camera waited for every answer of the talker'
        assert talker.wait_idle(120)
        assert talker.stats()['responses'] == 8
    finally:
        assert talker.close() and quiet.close()
