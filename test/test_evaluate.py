"""live-eval on a tiny model: teacher-forced metrics, free-running check, COIN, plot."""

import json

import numpy as np
import pytest

from live_ros.data.format import Dialogue, Turn
from live_ros.data.video import write_video
from live_ros.testing import tiny_models

from live_ros.data.synthetic_sets import SPLITS
from live_ros.cli.evaluate import main
from live_ros.evaluation.free_running import _rate_bins, Embedder, match, truth
from live_ros.evaluation.teacher_forced import model_format
from live_ros.metrics import longest_identical_run


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('eval')
    model, _ = tiny_models.build_tiny_live_model(root)
    return model.save_pretrained(str(root / 'model'))


@pytest.fixture(scope='module')
def coin(tmp_path_factory):
    """Write a COIN-layout annotation file and its two videos with OpenCV."""
    root = tmp_path_factory.mktemp('coin')
    rng = np.random.default_rng(0)
    for uid in ('v1', 'v2'):
        frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(40)]
        write_video(str(root / f'{uid}.mp4'), frames, fps=4)
    anno = {'database': {
        'v1': {'class': 'MakeTea', 'subset': 'testing', 'annotation': [
            {'segment': [0.5, 3.0], 'label': 'boil water'},
            {'segment': [4.0, 6.0], 'label': 'add tea'},
            {'segment': [6.5, 9.0], 'label': 'pour'}]},
        'v2': {'class': 'MakeTea', 'subset': 'testing', 'annotation': [
            {'segment': [1.0, 5.0], 'label': 'add tea'},
            {'segment': [5.5, 8.0], 'label': 'pour'}]}}}
    path = root / 'coin.json'
    path.write_text(json.dumps(anno))
    return str(path), str(root)


def test_eval_cli_writes_json_table_and_timeline(model_dir, coin, tmp_path, capsys):
    out = tmp_path / 'out'
    rc = main(['--model', model_dir, '--data', 'synthetic:val:2:6', '--free-run', '1',
               '--coin', coin[0], '--coin-root', coin[1], '--coin-tasks', 'step,procedure',
               '--threads', '1', '--out', str(out)])
    assert rc == 0
    report = json.loads((out / 'eval.json').read_text())
    tf = report['teacher_forced']
    assert tf['dialogues'] == 2 and tf['lm_ppl'] > 1.0
    assert 0.0 <= tf['fluency'] <= 1.0 and 0.0 <= tf['lm_correctness'] <= 1.0
    assert tf['time_diff'] >= 0.0
    ref = tf['reference']  # the reference's definitions, every dialogue counted
    assert ref['lm_ppl'] >= 1.0 and ref['time_diff'] >= 0.0
    assert 0.0 <= ref['fluency'] <= 1.0 and 0.0 <= ref['lm_correctness'] <= 1.0
    assert all('reference' in r for r in report['per_dialogue'])
    fr = report['free_run']
    assert fr['dialogues'] == 1 and fr['true_per_min'] > 0
    assert fr['spoken_per_min'] >= 0 and fr['unprompted_per_min'] >= 0
    assert (out / 'timeline.png').stat().st_size > 5000
    assert report['coin']['step']['questions'] == 5
    assert report['coin']['procedure']['questions'] == 3
    assert 0.0 <= report['coin']['step']['accuracy'] <= 1.0
    assert 'LM-PPL' in capsys.readouterr().out
    assert model_format(model_dir) == 'live'


def test_truth_splits_spontaneous_turns_and_answers():
    d = Dialogue('synthetic:1', 2.0, 5.0, turns=[
        Turn('user', 0.0, 'Narrate.'), Turn('assistant', 1.5, 'A circle appears.'),
        Turn('user', 2.0, 'Colour?'), Turn('assistant', 2.0, 'Red.'),
        Turn('assistant', 4.0, 'It moves.')])
    spont, answers = truth(d)
    assert spont == [(1.5, 'A circle appears.'), (4.0, 'It moves.')]
    assert answers == [(2.0, 'Red.', 'Colour?')]
    assert truth(d, n_frames=4)[0] == [(1.5, 'A circle appears.')]


def test_match_is_one_to_one_and_windowed():
    assert match([1.0, 5.0], [1.5, 1.2, 9.0], window=2.0) == [(0, 1)]
    assert match([1.0, 2.0], [1.9], window=2.0) == [(0, 0)]


def test_minilm_semantic_match_offline():
    e = Embedder()
    same, other = e.similarity(['A red circle appears.', 'A red circle appears.'],
                               ['A red circle shows up.', 'The tower is taken down.'])
    assert same > 0.6 and other < same - 0.2


def test_longest_identical_run_counts_consecutive_repeats():
    assert longest_identical_run([]) == 0
    assert longest_identical_run(['a', 'b', 'a']) == 1
    assert longest_identical_run(['a', 'b', 'b', 'b', 'a', 'a']) == 3


def test_rate_bins_per_slice_by_hand():
    runs = [{'said': [{'time': 10.0, 'query': None, 'text': 'x'},
                      {'time': 20.0, 'query': 'q?', 'text': 'y'},
                      {'time': 70.0, 'query': None, 'text': 'x'},
                      {'time': 80.0, 'query': None, 'text': 'x'}],
             'truth': [{'time': 15.0, 'text': 'x'}]}]
    bins = _rate_bins(runs, 2.0, 1.0)
    assert bins == [{'from_min': 0.0, 'to_min': 1.0, 'spoken_per_min': 1.0, 'true_per_min': 1.0},
                    {'from_min': 1.0, 'to_min': 2.0, 'spoken_per_min': 2.0, 'true_per_min': 0.0}]


def test_long_report_plays_mixed_streams(model_dir, tmp_path, capsys):
    out = tmp_path / 'long'
    rc = main(['--model', model_dir, '--long', '0.5', '--long-offset', '3', '--threads', '1',
               '--out', str(out)])
    assert rc == 0
    long = json.loads((out / 'eval.json').read_text())['long']['0.5min']
    sm = long['summary']
    assert long['seeds'] == [SPLITS['test'][0] + 3]
    assert sm['minutes'] == pytest.approx(61 / 2.0 / 60.0)
    assert sm['excess_per_min'] == pytest.approx(sm['spoken_per_min'] - sm['true_per_min'])
    assert sm['longest_identical_run'] >= (1 if sm['spoken_per_min'] else 0)
    assert [b['from_min'] for b in sm['bins']] == [0.0]
    assert 'long 0.5min' in capsys.readouterr().out
