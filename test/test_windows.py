"""Context windows: long streams cut the way the bounded streaming context holds them."""

from live_ros.testing import tiny_models

from live_ros.data.collator import IGNORE, build_example
from live_ros.data.synthetic import SyntheticWorld
from live_ros.data.windows import context_windows
from live_ros.model.template import StreamTemplate

BOUND, KEEP_FRAMES, KEEP_TURNS = 400, 12, 3


def _template():
    return StreamTemplate.from_tokenizer(tiny_models.build_tokenizer(), tokens_per_frame=3,
                                         system_prompt='Sys.')


def test_windows_fit_the_bound_and_overlap_by_the_kept_frames():
    template = _template()
    d = SyntheticWorld(7).dialogue(240.0, 'mixed')
    windows = context_windows(d, template, BOUND, KEEP_FRAMES, KEEP_TURNS)
    assert len(windows) > 3
    spans = [w.meta['window'] for w in windows]
    assert spans[0][0] == 0 and spans[-1][1] == d.num_frames
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        # a rebuild keeps at most KEEP_FRAMES recent frames (fewer when the prompt must
        # shrink under half the bound), and the stream moves on
        assert e0 - KEEP_FRAMES <= s1 < e0 < e1 and s1 > s0
    for w in windows:
        ex = build_example(template, w)
        assert len(ex.input_ids) <= BOUND
        assert ex.num_frames == w.num_frames == w.meta['window'][1] - w.meta['window'][0]
        assert w.start == w.meta['window'][0] / d.fps


def test_later_windows_replay_older_turns_as_unlearned_text():
    template = _template()
    d = SyntheticWorld(7).dialogue(240.0, 'mixed')
    windows = context_windows(d, template, BOUND, KEEP_FRAMES, KEEP_TURNS)
    assert any(t.time < 0 for w in windows[1:] for t in w.turns), 'no window replays a turn'
    for w in windows[1:]:
        start = w.meta['window'][0]
        history = [t for t in w.turns if t.time < 0]
        assert all(not t.learn for t in history)
        # the newest turns before the window, as many as the rebuilt prompt keeps
        before = [(t.role, t.text) for t in d.turns if d.frame_of(t.time) < start]
        assert [(t.role, t.text) for t in history] == before[len(before) - len(history):]
        # turns inside the window keep their frame, shifted to the window's start
        inside = [t for t in d.turns if start <= d.frame_of(t.time) < w.meta['window'][1]]
        mine = [t for t in w.turns if t.time >= 0]
        assert [(t.role, t.text, d.frame_of(t.time) - start) for t in inside] == \
            [(t.role, t.text, w.frame_of(t.time)) for t in mine]
        ex = build_example(template, w)
        # the replayed text comes before the first frame and has no label there
        first_frame = ex.input_ids.index(template.frame_token_id)
        assert all(lab == IGNORE for lab in ex.labels[:first_frame])


def test_a_short_dialogue_is_one_window():
    template = _template()
    d = SyntheticWorld(3).dialogue(10.0)
    assert context_windows(d, template, BOUND, KEEP_FRAMES, KEEP_TURNS) == [d]


def test_window_layout_equals_the_sessions_rebuilt_cache(tmp_path):
    """The training window after a rebuild holds exactly the ids the session's cache holds."""
    from live_ros.data.format import Dialogue, Turn
    from live_ros.streaming.session import StreamingSession
    model, _ = tiny_models.build_tiny_live_model(tmp_path)
    silent, _ = tiny_models.steer_frame_decisions(model)
    session = StreamingSession(model, context_budget=300, max_new_tokens=3, keep_frames=4)
    session.ask('Where is the cup?', 0.0)
    answer, rebuilt_at = None, None
    for i in range(60):
        for r in session.push_frame(silent, i * 0.5):
            answer = r.text
        if session.rebuilds:
            rebuilt_at = i
            break
    assert rebuilt_at is not None and answer is not None
    d = Dialogue('synthetic:0', 2.0, 59 / 2.0, turns=[
        Turn('user', 0.0, 'Where is the cup?'), Turn('assistant', 0.0, answer)])
    windows = context_windows(d, model.template, session.context_bound, 4,
                              model.cfg.context_keep_turns, max_new_tokens=3)
    assert windows[0].meta['window'] == [0, rebuilt_at]
    assert windows[1].meta['window'][0] == rebuilt_at - 4
    ex = build_example(model.template, windows[1])
    assert ex.input_ids[:len(session.fed_ids)] == session.fed_ids
