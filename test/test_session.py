"""StreamingSession on a tiny random model: continuous cache, decisions, queries."""

import numpy as np
import pytest
import torch

from live_ros.streaming.session import StreamingSession
from live_ros.streaming.streamer import CallbackStreamer
from live_ros.testing.tiny_models import build_tiny_live_model, steer_frame_decisions


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    model, cfg = build_tiny_live_model(tmp_path_factory.mktemp('tiny'))
    silent, speak = steer_frame_decisions(model)
    return model, silent, speak


def full_forward_logits(model, session):
    """Logits of one full forward pass over everything the session fed to its cache."""
    ids = torch.tensor([session.fed_ids])
    frames = torch.cat(session.fed_frames) if session.fed_frames else None
    with torch.no_grad():
        return model(ids, frame_embeds=frames).logits[0, -1].float()


def test_cache_path_equals_full_forward(tiny):
    model, silent, speak = tiny
    session = StreamingSession(model, record_frames=True, max_new_tokens=4)
    for i in range(6):
        session.push_frame(speak if i == 2 else silent, i * 0.5)
        torch.testing.assert_close(session.last_logits, full_forward_logits(model, session),
                                   atol=1e-4, rtol=1e-4)
    session.ask('What am I doing?', 3.0)
    session.push_frame(silent, 3.0)
    assert session.cache_tokens == len(session.fed_ids)
    torch.testing.assert_close(session.last_logits, full_forward_logits(model, session),
                               atol=1e-4, rtol=1e-4)


def test_prime_equals_streaming_to_that_point(tiny):
    """A session primed with 5 frames in one prefill goes on as one that streamed them."""
    model, silent, _ = tiny
    frames = [silent * (1 + k / 10) for k in range(6)]   # distinct frames
    streamed = StreamingSession(model, response_threshold=0.0)
    for k, frame in enumerate(frames):
        streamed.push_frame(frame, k * 0.5)
    primed = StreamingSession(model, response_threshold=0.0)
    enc = model.template.encoder()
    enc.system(primed.system_prompt)
    for _ in frames[:5]:
        enc.frame()
    primed.prime(enc, frames[:5], 2.0)
    assert (primed.frame_index, primed.last_frame_time) == (4, 2.0)
    primed.push_frame(frames[5], 2.5)
    assert primed.cache_tokens == streamed.cache_tokens and primed.frame_index == 5
    torch.testing.assert_close(primed.last_logits, streamed.last_logits, atol=1e-4, rtol=1e-4)


def test_silent_frames_stay_silent_and_threshold_is_live(tiny):
    model, silent, _ = tiny
    session = StreamingSession(model, record_frames=True, max_new_tokens=3)
    out = [session.push_frame(silent, i * 0.5) for i in range(4)]
    assert out == [[], [], [], []]
    # Streaming EOS only: frames joined by the interval token, nothing generated.
    frames = '<v>' * model.tokens_per_frame
    assert model.tokenizer.decode(session.fed_ids).endswith('\n[' + ','.join([frames] * 4))
    session.response_threshold = 1.01  # P(interval) < 1.01 always: it is zeroed, so it speaks
    responses = session.push_frame(silent, 2.0)
    assert len(responses) == 1 and responses[0].query_id == 0
    assert responses[0].frame_index == 4 and responses[0].stream_time == 2.0
    assert responses[0].interval_prob > 0.99


def test_spontaneous_response_streams_tokens_and_resumes_stream(tiny):
    model, silent, speak = tiny
    tokens = []
    done = []
    session = StreamingSession(model, record_frames=True, max_new_tokens=5,
                               on_token=lambda q, text, t: tokens.append((q, text, t)),
                               on_response=done.append)
    session.push_frame(silent, 0.0)
    responses = session.push_frame(speak, 0.5)
    assert len(responses) == 1
    r = responses[0]
    assert (r.query_id, r.frame_index, r.stream_time, r.cancelled) == (0, 1, 0.5, False)
    assert 1 <= len(r.token_ids) <= 5 and r.latency_s > 0
    assert done == [r]
    assert len(tokens) == len(r.token_ids) and tokens[-1] == (0, r.text, 0.5)
    assert r.interval_prob < 0.01
    tok = model.tokenizer
    text = tok.decode(session.fed_ids)
    assert text.endswith(']\nAssistant:' + tok.decode(r.token_ids[:-1]))
    session.push_frame(silent, 1.0)
    text = tok.decode(session.fed_ids)
    # After the response the stream reopens with eos + '\n[' before the next frame.
    assert text.endswith(tok.eos_token + '\n[' + '<v>' * model.tokens_per_frame)


def test_query_inserted_after_last_frame_at_or_before_t(tiny):
    model, silent, _ = tiny
    tok = model.tokenizer
    session = StreamingSession(model, record_frames=True, max_new_tokens=2)
    q1 = session.ask('What am I doing?', 1.2)
    q2 = session.ask('Where is the cup?', 2.0)
    got = []
    for i in range(6):
        got += [(r.query_id, r.frame_index, r.stream_time)
                for r in session.push_frame(silent, i * 0.5)]
    assert got == [(q1, 2, 1.2), (q2, 4, 2.0)]
    text = tok.decode(session.fed_ids)
    frames = '<v>' * model.tokens_per_frame
    head = text.split(']\nUser: What am I doing?\nAssistant:')[0]
    assert head.count(frames) == 3  # frames at 0.0, 0.5, 1.0
    head = text.split(']\nUser: Where is the cup?\nAssistant:')[0]
    assert head.count(frames) == 5  # ... 1.5, 2.0
    # A late question (t before the last frame) is answered at once.
    q3 = session.ask('What is next?', 0.1)
    (r,) = session.take_responses()
    assert r.query_id == q3 and r.frame_index == 5
    # A question before any frame comes before the stream.
    session.reset()
    q4 = session.ask('Hello?', 0.0)
    responses = session.push_frame(silent, 0.5)
    assert [r.query_id for r in responses] == [q4]
    assert '<v>' not in tok.decode(session.fed_ids).split('Hello?')[0]


def test_rgb_frames_and_reset(tiny):
    model, _, _ = tiny
    session = StreamingSession(model, record_frames=True, max_new_tokens=2, response_threshold=0.0)
    frame = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    session.push_frame(frame, 0.0)
    assert len(session.fed_frames) >= 1 and session.cache_tokens == len(session.fed_ids)
    expected = model.encode_images([frame])[0]
    torch.testing.assert_close(session.fed_frames[0], expected)
    session.reset()
    assert session.cache_tokens == 0 and session.fed_ids == [] and session.frame_index == -1


def test_sampling_is_seeded_and_bounded(tiny):
    model, silent, speak = tiny
    texts = []
    for _ in range(2):
        session = StreamingSession(model, record_frames=True, max_new_tokens=6, seed=3,
                                   sampling={'temperature': 0.8, 'top_k': 5})
        session.push_frame(silent, 0.0)
        (r,) = session.push_frame(speak, 0.5)
        assert len(r.token_ids) <= 6
        texts.append(r.token_ids)
    assert texts[0] == texts[1]


def test_cancel_cuts_the_answer_and_keeps_the_cache_consistent(tiny):
    model, silent, _ = tiny
    seen = []
    session = StreamingSession(model, record_frames=True, max_new_tokens=50,
                               response_threshold=0.0)
    stop_ids = session.template.stop_token_ids
    session.template.stop_token_ids = frozenset()  # only max_new_tokens or cancel end it

    def on_token(query_id, text, t):
        seen.append(query_id)
        if len(seen) == 3:
            session.cancel(query_id)   # the asker gives up while the third token decodes

    session.attach(CallbackStreamer(on_token=on_token))
    try:
        session.push_frame(silent, 0.0)
        query_id = session.ask('What am I doing?')
        (cut,) = [r for r in session.responses if r.query_id == query_id]
        assert cut.cancelled and len(cut.token_ids) == 3 and cut.text
        session.push_frame(silent, 0.5)   # the stream goes on after the cut answer
    finally:
        session.template.stop_token_ids = stop_ids
    assert session.cache_tokens == len(session.fed_ids)
    torch.testing.assert_close(session.last_logits, full_forward_logits(model, session),
                               atol=1e-4, rtol=1e-4)
    # The next question is answered in full: the cancel was for one query only.
    later = session.ask('And now?')
    assert not [r for r in session.responses if r.query_id == later][0].cancelled


def test_cancel_before_the_answer_skips_the_question(tiny):
    model, silent, _ = tiny
    session = StreamingSession(model, record_frames=True, max_new_tokens=4, response_threshold=0.0)
    session.push_frame(silent, 0.0)
    query_id = session.ask('What am I doing?', t=2.0)   # due after a later frame
    session.cancel(query_id)
    (skipped,) = [r for r in session.push_frame(silent, 2.0) if r.query_id == query_id]
    assert skipped.cancelled and skipped.text == '' and skipped.token_ids == []
    context = session.template.tokenizer.decode(session.fed_ids)
    assert 'What am I doing' not in context and context.count('Assistant') == 0, context
