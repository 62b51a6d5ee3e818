"""The synthetic world: determinism, prefix stability, exact ground truth, disjoint splits."""

import numpy as np
import pytest

from live_ros.data.format import stream_events
from live_ros.data.synthetic import CELLS, COLOURS, FPS, SyntheticWorld
from live_ros.data.synthetic_sets import parse_spec, seeds, SPLITS, synthetic_dialogues


def test_same_seed_same_world_and_dialogue():
    a, b = SyntheticWorld(12), SyntheticWorld(12)
    assert a.dialogue(20.0) == b.dialogue(20.0)
    for k in (0, 7, 33):
        assert np.array_equal(a.render(k / FPS), b.render(k / FPS))
    c = SyntheticWorld(13)
    assert c.dialogue(20.0) != a.dialogue(20.0)


def test_timeline_is_prefix_stable_for_any_length():
    short, long = SyntheticWorld(3), SyntheticWorld(3)
    long.events_until(400)
    ev_short = short.events_until(40)
    assert ev_short == [e for e in long.events if e.frame <= 40]
    assert np.array_equal(short.render(15.0), long.render(15.0))
    d = SyntheticWorld(3).dialogue(300.0)  # 5 minutes
    assert d.num_frames == 601 and d.turns[-1].time <= 300.0


def test_frames_are_rgb_uint8_and_sized():
    f = SyntheticWorld(1, size=96).render(0.0)
    assert f.shape == (96, 96, 3) and f.dtype == np.uint8


def test_events_are_visible_on_their_frame_and_only_then():
    w = SyntheticWorld(21, noise=0.0)
    events = w.events_until(120)
    event_frames = {e.frame for e in events}
    prev = w.render(0.0)
    for k in range(1, 120):
        cur = w.render(k / FPS)
        changed = np.abs(cur.astype(int) - prev.astype(int)).max(axis=2) > 40
        if k in event_frames:
            assert changed.sum() > 200, f'event at frame {k} is not visible'
        else:
            assert changed.sum() == 0, f'frame {k} changed without an event'
        prev = cur


def test_narration_turns_match_events():
    w = SyntheticWorld(0)
    d = w.dialogue(40.0, mode='narration')
    said = [(t.time, t.text) for t in d.turns if t.role == 'assistant']
    events = [(e.frame / FPS, e.text) for e in w.events if e.frame < d.num_frames]
    for item in events:
        assert item in said
    assert d.turns[0].role == 'user' and d.turns[0].time == 0.0


def _pixel(img, cell):
    x, y = CELLS[cell]
    n = img.shape[0]
    return tuple(int(v) for v in img[int(y * n), int(x * n)])


def test_question_answers_are_read_from_the_pixels():
    checked = 0
    for seed in seeds('train', 30):
        w = SyntheticWorld(seed, noise=0.0)
        d = w.dialogue(30.0)
        for q, a in zip(d.turns, d.turns[1:]):
            if q.role != 'user' or not q.text.startswith('What colour is the '):
                continue
            shape = q.text[len('What colour is the '):-1]
            colour = a.text.split(' is ')[1][:-1]
            cell = w.state_at(q.time).objects[shape][1]
            assert _pixel(w.render(q.time), cell) == COLOURS[colour]
            checked += 1
    assert checked >= 3


def test_tell_me_when_is_answered_at_the_first_matching_event():
    found = 0
    for seed in seeds('val', 40):
        w = SyntheticWorld(seed)
        d = w.dialogue(30.0, mode='assist')
        for i, t in enumerate(d.turns):
            if t.role == 'user' and t.text == 'Tell me when the tower is complete.':
                answer = next(x for x in d.turns[i + 2:] if x.text == 'The tower is complete now.')
                first = next(e for e in w.events
                             if e.frame / FPS > t.time and e.text.endswith('complete.'))
                assert answer.time == first.frame / FPS
                found += 1
    assert found >= 1


def test_splits_are_disjoint_and_specs_parse():
    ranges = sorted(SPLITS.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
    assert list(seeds('val', 2)) == [SPLITS['val'][0], SPLITS['val'][0] + 1]
    ds = parse_spec('synthetic:test:3:12')
    assert [d.video for d in ds] == [f'synthetic:{s}' for s in seeds('test', 3)]
    assert all(d.duration == 12.0 for d in ds)
    assert parse_spec('data.json') is None
    with pytest.raises(ValueError):
        seeds('val', 10 ** 6)


def test_dialogues_use_the_stream_order():
    d = synthetic_dialogues('train', 1, 15.0)[0]
    kinds = [k for k, _ in stream_events(d)]
    assert kinds.count('frame') == d.num_frames == 31
    assert kinds[0] == 'frame'


def test_mixed_streams_narrate_only_between_request_and_stop():
    from live_ros.data.synthetic import NARRATE, NARRATE_ACK, STOP_ACK, STOP_NARRATING
    for seed in range(5):
        d = SyntheticWorld(seed).dialogue(600.0, 'mixed')
        assert d.meta['mode'] == 'mixed' and d.num_frames == 1201
        narrating, asked, answered = False, set(), 0
        for prev, turn in zip([None] + d.turns, d.turns):
            if turn.role == 'user':
                if turn.text in NARRATE:
                    narrating = True
                elif turn.text in STOP_NARRATING:
                    narrating = False
                asked.add(turn.time)
                continue
            if turn.text == STOP_ACK:
                assert prev.text in STOP_NARRATING and not narrating
            elif turn.text == NARRATE_ACK:
                assert prev.text in NARRATE and narrating and prev.time == turn.time
            elif turn.time not in asked:  # spoke on its own
                assert narrating or 'has' in turn.text or 'complete now' in turn.text
                answered += 1
        # long stretches where nobody speaks (quiet and assist segments)
        times = [0.0] + [t.time for t in d.turns] + [d.duration]
        assert max(b - a for a, b in zip(times, times[1:])) >= 20.0
        assert answered > 0


def test_spec_modes_and_offsets():
    a = parse_spec('synthetic:test:2:60:mixed:5')
    assert [d.meta['seed'] for d in a] == [SPLITS['test'][0] + 5, SPLITS['test'][0] + 6]
    assert all(d.meta['mode'] == 'mixed' for d in a)
    assert parse_spec('synthetic:test:2:30:auto') == parse_spec('synthetic:test:2:30')
    with pytest.raises(ValueError):
        parse_spec('synthetic:test:2:30:chatty')
