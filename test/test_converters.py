"""Converters from offline annotation layouts (fixture files written here) to dialogues."""

import json

from live_ros.data.converters import (clean_narration, coin_dialogues,
                                      EGO4D_NARRATION_INSTRUCTION, ego4d_narration_streams,
                                      goalstep_dialogues)
from live_ros.cli.convert import main
from live_ros.data.rewrite import rewrite
from live_ros.data.format import Turn, load_dialogues
from live_ros.testing import tiny_models

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
    """As the reference: '#' tags removed, subject letters kept, first word capitalised."""
    assert clean_narration('#C C picks a cup') == 'C picks a cup.'
    assert clean_narration('#O X waves #unsure') == 'X waves.'
    assert clean_narration('#C C ') == 'C.'
    assert clean_narration('  ') == ''


def test_ego4d_narration_streams(tmp_path):
    path = tmp_path / 'narration.json'
    path.write_text(json.dumps(EGO4D))
    ds = ego4d_narration_streams(str(path), video_root='/videos')
    assert len(ds) == 2  # one stream per narration pass, every pass used
    d = ds[0]
    assert d.video == '/videos/vid1.mp4' and d.start == 10.5 and d.fps == 2.0
    assert d.meta['pass'] == 'narration_pass_1'
    assert d.turns[0] == Turn('user', 0.0, EGO4D_NARRATION_INSTRUCTION)
    got = [(t.time, t.text) for t in d.turns[1:]]
    # 10.2 -> 10.5 = the start, answered right after the instruction; 11.1 and 11.3 both
    # ceil to 11.5 (the later wins); the repeat at 13.0 is skipped; 'X waves.' at 14.5;
    # 400 s is frame 780 of the stream (kept: under 1200 frames)
    assert got == [(0.0, 'C picks a cup.'), (1.0, 'C puts the jug down.'),
                   (4.0, 'X waves.'), (389.5, 'C opens the door.')]
    assert d.duration == 389.5 and d.num_frames == 780
    # the second pass: 'C ignored pass.' has 3 words, one narration at 1.0 s
    assert [(t.time, t.text) for t in ds[1].turns[1:]] == [(0.0, 'C ignored pass.')]
    # clipped at max_frames by dropping whole later narrations
    short = ego4d_narration_streams(EGO4D, max_frames=10)[0]
    assert [t.text for t in short.turns[1:]] == [
        'C picks a cup.', 'C puts the jug down.', 'X waves.']
    assert short.num_frames == 9
    # a split: only the listed videos
    assert ego4d_narration_streams(EGO4D, video_uids=['other']) == []


def test_ego4d_narrations_under_two_words_are_dropped():
    anno = {'v': {'narration_pass_1': {'narrations': [
        {'timestamp_sec': 1.0, 'narration_text': '#C C'},
        {'timestamp_sec': 2.0, 'narration_text': '#C C sits'}]}}}
    d = ego4d_narration_streams(anno)[0]
    assert d.start == 2.0 and [t.text for t in d.turns[1:]] == ['C sits.']


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


def test_cli_writes_the_format(tmp_path):
    src = tmp_path / 'coin.json'
    src.write_text(json.dumps(COIN))
    out = tmp_path / 'out.jsonl'
    main(['coin', str(src), str(out), '--video-root', str(tmp_path)])
    ds = load_dialogues(str(out))
    assert len(ds) == 2 and ds[0].video.startswith(str(tmp_path))


def test_rewrite_with_a_local_lm_keeps_the_timing(tmp_path):
    llm_dir = tiny_models.save_tiny_llama(str(tmp_path / 'lm'))
    ds = goalstep_dialogues(GOALSTEP, seed=1)
    before = [(t.role, t.time) for t in ds[0].turns]
    out = rewrite(ds, llm_dir, max_new_tokens=6)
    after = [(t.role, t.time) for t in out[0].turns]
    assert after == before
    assert all(t.text and '\n' not in t.text for t in out[0].turns)
