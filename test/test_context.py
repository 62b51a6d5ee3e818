"""Always-on: the cache stays within its budget over a long stream and keeps answering."""

import torch

from live_ros.streaming.context import ContextHistory
from live_ros.streaming.session import StreamingSession
from live_ros.testing.tiny_models import build_tiny_live_model, steer_frame_decisions


def test_history_keeps_recent_frames_and_older_turns():
    history = ContextHistory(keep_frames=3, keep_turns=2)
    for i in range(5):
        history.add_frame(i)
        history.add_turn('user', f'q{i}')
        history.add_turn('assistant', f'a{i}')
    events = history.events()
    assert [v for k, v in events if k == 'frame'] == [2, 3, 4]
    # Turns before the first kept frame stay as text, at most keep_turns older ones.
    assert events[:5] == [('user', 'q0'), ('assistant', 'a0'), ('user', 'q1'),
                          ('assistant', 'a1'), ('frame', 2)]
    assert history.shrink() and history.events()[0] == ('assistant', 'a0')
    for _ in range(4):
        assert history.shrink()
    assert history.events()[0] == ('user', 'q2')  # frame 2 and its older turns are gone


def test_5000_frame_stream_stays_in_budget_and_keeps_answering(tmp_path):
    model, _ = build_tiny_live_model(tmp_path)
    silent, speak = steer_frame_decisions(model)
    budget = 256
    session = StreamingSession(model, context_budget=budget, max_new_tokens=4,
                               record_frames=True)
    asked, answered, spoke = {}, {}, []
    for i in range(5000):
        t = i * 0.5
        if i % 1000 == 500:
            asked[session.ask(f'What happened at frame {i}?', t)] = i
        speak_now = i % 777 == 5
        for r in session.push_frame(speak if speak_now else silent, t):
            if r.query_id:
                answered[r.query_id] = r.frame_index
            else:
                spoke.append(r.frame_index)
        assert session.cache_tokens <= budget
    assert session.max_cache_tokens <= budget
    assert session.rebuilds > 100
    assert answered == asked  # every query answered right after its frame
    assert spoke == [i for i in range(5000) if i % 777 == 5]
    # The rebuilt cache is a normal template prompt: system first, recent frames only.
    tok = model.tokenizer
    text = tok.decode(session.fed_ids)
    assert text.startswith(tok.bos_token + model.cfg.system_prompt + '\n')
    assert text.count('<v>' * model.tokens_per_frame) <= budget // model.tokens_per_frame
    # And it is consistent: the cache gives the logits of a full forward over it.
    with torch.no_grad():
        full = model(torch.tensor([session.fed_ids]),
                     frame_embeds=torch.cat(session.fed_frames)).logits[0, -1]
    torch.testing.assert_close(session.last_logits, full, atol=1e-4, rtol=1e-4)


def test_rebuild_replays_recent_dialogue_as_text(tmp_path):
    model, _ = build_tiny_live_model(tmp_path)
    silent, _ = steer_frame_decisions(model)
    session = StreamingSession(model, context_budget=300, max_new_tokens=3, keep_frames=4)
    session.ask('Where is the cup?', 0.0)
    rebuilds_seen = 0
    for i in range(40):
        session.push_frame(silent, i * 0.5)
        if session.rebuilds > rebuilds_seen:
            rebuilds_seen = session.rebuilds
            text = model.tokenizer.decode(session.fed_ids)
            assert text.count('<v>' * model.tokens_per_frame) <= 5
            # The question (older than the kept frames) comes back as a text turn.
            assert '\nUser: Where is the cup?\nAssistant: ' in text
    assert rebuilds_seen >= 2


def test_reference_context_mode_never_rebuilds(tmp_path):
    """context_mode='reference' grows one cache past the budget, as the reference code does."""
    model, _ = build_tiny_live_model(tmp_path)
    silent, _ = steer_frame_decisions(model)
    session = StreamingSession(model, context_budget=120, context_mode='reference')
    for i in range(30):
        session.push_frame(silent, i * 0.5)
    assert session.rebuilds == 0
    assert session.cache_tokens == len(session.fed_ids) > 120
