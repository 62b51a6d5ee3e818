"""Converters from offline annotation layouts (fixture files written here) to dialogues."""

import json

import pytest

from live_ros.data.converters import (clean_narration, coin_accuracy, coin_benchmark,
                                      coin_dialogues, ego4d_narration_streams,
                                      goalstep_dialogues, levenshtein, main, match_category,
                                      rewrite)
from live_ros.data.format import load_dialogues

EGO4D = {'videos': {'vid1': {'narration_pass_1': {'narrations': [
    {'timestamp_sec': 10.2, 'narration_text': '#C C picks a cup'},
    {'timestamp_sec': 11.1, 'narration_text': '#C C pours water into the cup'},
    {'timestamp_sec': 11.3, 'narration_text': '#C C puts the jug down'},
    {'timestamp_sec': 13.0, 'narration_text': '#C C puts the jug down'},
    {'timestamp_sec': 14.4, 'narration_text': '#O X waves #unsure'},
    {'timestamp_sec': 400.0, 'narration_text': '#C C opens the door'},
]}, 'narration_pass_2': {'narrations': [
    {'timestamp_sec': 1.0, 'narration_text': '#C C ignored pass'}]}}}}

COIN = {'database': {
    'v1': {'class': 'MakeCoffee', 'subset': 'testing', 'start': 1.0, 'end': 20.0,
           'annotation': [{'segment': [2.0, 6.3], 'label': 'pour water'},
                          {'segment': [8.0, 12.0], 'label': 'add coffee'},
                          {'segment': [13.1, 19.0], 'label': 'stir'}]},
    'v2': {'class': 'ChangeTire', 'subset': 'training', 'start': 0.0, 'end': 9.0,
           'annotation': [{'segment': [0.5, 4.0], 'label': 'remove the nut'},
                          {'segment': [4.5, 8.0], 'label': 'take off the tire'}]},
}}

GOALSTEP = {'videos': [{'video_uid': 'g1', 'goal_description': 'make tea', 'segments': [
    {'start_time': 1.0, 'end_time': 5.0, 'step_description': 'Boil water'},
    {'start_time': 6.0, 'end_time': 9.2, 'step_description': 'Steep the tea'}]}]}


def test_clean_narration():
    assert clean_narration('#C C picks a cup') == 'Picks a cup.'
    assert clean_narration('#O X waves #unsure') == 'X waves.'
    assert clean_narration('#C C ') == ''


def test_ego4d_narration_streams(tmp_path):
    path = tmp_path / 'narration.json'
    path.write_text(json.dumps(EGO4D))
    ds = ego4d_narration_streams(str(path), video_root='/videos', max_duration=60.0)
    assert len(ds) == 2  # the narration at 400 s starts a second window
    d = ds[0]
    assert d.video == '/videos/vid1.mp4' and d.start == 10.0 and d.fps == 2.0
    assert d.turns[0].role == 'user' and d.turns[0].time == 0.0
    got = [(t.time, t.text) for t in d.turns[1:]]
    # 10.2 -> 10.5; 11.1 and 11.3 both ceil to 11.5 (the later one wins); the repeat is dropped
    assert got == [(0.5, 'Picks a cup.'), (1.5, 'Puts the jug down.'), (4.5, 'X waves.')]
    assert d.duration == 4.5 and d.num_frames == 10
    assert ds[1].start == 400.0 and ds[1].turns[1].text == 'Opens the door.'


def test_coin_dialogues_queries_and_step_boundaries(tmp_path):
    path = tmp_path / 'coin.json'
    path.write_text(json.dumps(COIN))
    ds = coin_dialogues(str(path), video_root='/coin', split='test', seed=3)
    assert len(ds) == 1
    d = ds[0]
    assert d.meta['task'] == 'make coffee' and d.duration == 19.0
    users = [t for t in d.turns if t.role == 'user']
    assert users and all((t.time * 2) == int(t.time * 2) for t in d.turns)
    # every assistant turn is the immediate answer to a query or sits on a step boundary
    boundaries = {2.0, 6.5, 8.0, 12.0, 13.5, 19.0}
    user_times = {u.time for u in users}
    for t in d.turns:
        if t.role == 'assistant':
            assert t.time in user_times or t.time in boundaries
            assert t.time in user_times or t.text.startswith(('Now:', 'Done:'))
    # after the last query, every later boundary is spoken
    last_q = max(user_times)
    spoken = {t.time for t in d.turns if t.role == 'assistant' and t.time > last_q}
    assert spoken == {b for b in boundaries if b > last_q}


def test_goalstep_dialogues():
    ds = goalstep_dialogues(GOALSTEP, video_root='/gs', seed=1)
    assert len(ds) == 1 and ds[0].meta['task'] == 'make tea' and ds[0].duration == 9.5
    texts = ' '.join(t.text for t in ds[0].turns)
    assert 'steep the tea' in texts or 'boil water' in texts


def test_coin_benchmarks_and_accuracy():
    ds, cats = coin_benchmark(COIN, 'step', split='test')
    assert [d.turns[-1].text for d in ds] == ['Pour water.', 'Add coffee.', 'Stir.']
    assert ds[0].start == 2.0 and ds[0].duration == 4.5
    assert [cats[d.meta['answer'][0]] for d in ds] == ['Pour water.', 'Add coffee.', 'Stir.']
    assert coin_accuracy(['pour water', 'add cofee', 'take off the tire'], ds, cats) == \
        pytest.approx(2 / 3)
    tasks, tcats = coin_benchmark(COIN, 'task', split='test')
    assert tcats == ['Change tire.', 'Make coffee.'] and tasks[0].meta['answer'] == [1]
    nxt, _ = coin_benchmark(COIN, 'next', split='test')
    assert [d.turns[-1].text for d in nxt] == ['Add coffee.', 'Stir.']
    proc, pcats = coin_benchmark(COIN, 'procedure', split='test')
    assert proc[0].turns[-1].text == '1. Add coffee.\n2. Stir.'
    assert coin_accuracy(['1. Add coffee.\n2. Pour water.', 'Stir.'], proc, pcats) == \
        pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        coin_benchmark(COIN, 'dance')


def test_matching_helpers():
    assert levenshtein('kitten', 'sitting') == 3
    assert match_category('stir it', ['Pour water.', 'Stir.']) == 1


def test_cli_writes_the_format(tmp_path):
    src = tmp_path / 'coin.json'
    src.write_text(json.dumps(COIN))
    out = tmp_path / 'out.jsonl'
    main(['coin', str(src), str(out), '--video-root', str(tmp_path)])
    ds = load_dialogues(str(out))
    assert len(ds) == 2 and ds[0].video.startswith(str(tmp_path))


def test_rewrite_with_a_local_lm_keeps_the_timing(tmp_path):
    tiny_models = pytest.importorskip('tiny_models')
    llm_dir = tiny_models.save_tiny_llama(str(tmp_path / 'lm'))
    ds = goalstep_dialogues(GOALSTEP, seed=1)
    before = [(t.role, t.time) for t in ds[0].turns]
    out = rewrite(ds, llm_dir, max_new_tokens=6)
    after = [(t.role, t.time) for t in out[0].turns]
    assert after == before
    assert all(t.text and '\n' not in t.text for t in out[0].turns)
