"""COIN benchmarks as the reference builds and scores them, on a hand-made annotation file.

Every expected value below was worked out by hand from the rules in live_ros/data/coin.py.
"""

import numpy as np
import pytest

from live_ros.data.coin import (clean_step, clean_task, coin_accuracy, coin_benchmark,
                                levenshtein, nearest_category, question)
from live_ros.data.video import write_video
from live_ros.evaluation.coin_eval import generate_after_stream
from live_ros.testing import tiny_models

COIN = {'database': {
    'a': {'class': 'MakeCoffee', 'subset': 'testing', 'start': 1.2, 'end': 9.0,
          'annotation': [{'segment': [1.2, 3.1], 'label': 'pour water'},
                         {'segment': [4.0, 6.0], 'label': 'process (crop, fold) paper'},
                         {'segment': [6.3, 8.8], 'label': 'stir'}]},
    'b': {'class': 'ReplaceTVRemoteBattery', 'subset': 'testing', 'start': 0.0, 'end': 5.0,
          'annotation': [{'segment': [0.0, 2.0], 'label': 'open the cover'},
                         {'segment': [2.5, 4.0], 'label': 'insert battery'}]},
    'c': {'class': 'ChangeTire', 'subset': 'training', 'start': 0.0, 'end': 4.0,
          'annotation': [{'segment': [0.5, 3.0], 'label': 'remove the nut'}]},
    'd': {'class': 'MissingVideo', 'subset': 'testing', 'start': 0.0, 'end': 4.0,
          'annotation': [{'segment': [0.5, 3.0], 'label': 'not scored'}]},
}}
DURATIONS = {'a': 8.0, 'b': 5.0, 'c': 4.0}   # 'd' has no video: left out, as the reference


def test_cleaning_rules():
    assert clean_task('MakeCoffee') == 'make coffee'
    assert clean_task('ReplaceTVRemoteBattery') == 'replace TV remote battery'
    assert clean_task('InstallSSD') == 'install SSD'
    assert clean_step('process (crop, fold) paper') == 'crop and fold paper'
    assert clean_step('Pour Water') == 'Pour Water'   # otherwise as written


def test_step_benchmark_segments_and_categories():
    ds, categories = coin_benchmark(COIN, 'step', split='test', durations=DURATIONS)
    # categories: the test split's steps only ('remove the nut' is training, 'd' has no video)
    assert categories == ['crop and fold paper', 'insert battery', 'open the cover',
                          'pour water', 'stir']
    assert [d.meta['labels'] for d in ds] == [['pour water'], ['crop and fold paper'], ['stir'],
                                              ['open the cover'], ['insert battery']]
    first = ds[0]
    # 1.2 s -> ceil to 1.5 s; 3.1 s -> 3.5 s: frames 3..7, both ends included (5 frames)
    assert (first.start, first.duration, first.num_frames) == (1.5, 2.0, 5)
    # the question comes before the stream, the answer after it
    assert first.turns[0].role == 'user' and first.turns[0].time < 0
    assert first.turns[0].text == question('step')
    assert first.turns[1].text == 'Pour water.'
    # 'stir' ends at 8.8 s, past the 8 s video: clipped to its end
    assert (ds[2].start, ds[2].duration) == (6.5, 1.5)


def test_next_task_procedure_and_task_procedure_questions():
    nxt, _ = coin_benchmark(COIN, 'next', split='test', durations=DURATIONS)
    assert [d.meta['labels'] for d in nxt] == [['crop and fold paper'], ['stir'],
                                               ['insert battery']]
    assert nxt[0].turns[0].text.startswith('What is the next action for the video?')
    task, categories = coin_benchmark(COIN, 'task', split='test', durations=DURATIONS)
    assert categories == ['make coffee', 'replace tv remote battery']
    assert [d.turns[1].text for d in task] == ['Make coffee.', 'Replace tv remote battery.']
    assert (task[0].start, task[0].duration) == (1.5, 6.5)   # 1.2 -> 1.5 s, 9.0 -> 8.0 s
    proc, _ = coin_benchmark(COIN, 'procedure', split='test', durations=DURATIONS)
    assert proc[0].turns[0].text.startswith('What is the next 2 actions for the video? '
                                            'Format your answer concisely, listing')
    assert proc[0].turns[1].text == '1. Crop and fold paper.\n2. Stir.'
    assert proc[1].turns[0].text == question('next')   # one step left: the next question
    tp, _ = coin_benchmark(COIN, 'task_procedure', split='test', durations=DURATIONS)
    assert tp[0].turns[0].text.startswith('To make coffee, what is the next 2 actions')
    assert tp[2].turns[0].text.startswith('To replace TV remote battery, what is the next '
                                          'action')
    with pytest.raises(ValueError):
        coin_benchmark(COIN, 'dance', durations=DURATIONS)


def test_scoring_rules():
    ds, categories = coin_benchmark(COIN, 'step', split='test', durations=DURATIONS)
    assert levenshtein('kitten', 'sitting') == 3
    # ties go to the alphabetically first category
    assert nearest_category('stix', ['stir', 'stiz']) == 'stir'
    answers = ['Pour water.',          # lower-cased, dot removed: exact
               'crop and fold papers',  # nearest category: right
               'insert battery',        # a category, but the wrong one
               'open cover',            # nearest 'open the cover': right
               '']                      # empty: nearest is 'stir' (4 edits): wrong
    assert coin_accuracy(answers, ds, categories) == pytest.approx(3 / 5)
    proc, _ = coin_benchmark(COIN, 'procedure', split='test', durations=DURATIONS)
    # labels: [crop and fold paper, stir], [stir], [insert battery]
    answers = ['1. crop and fold paper\n2. Stir.',   # 'Stir.' keeps case and dot: 'stir' is
               'stir',                              # still its nearest category -> 2 right
               '1. open the cover\n2. stir\n3. stir']   # one label: one pair counted, wrong
    # pairs counted: 2 + 1 + 1 = 4 (zip of lines and labels); right: 2 + 1 + 0
    assert coin_accuracy(answers, proc, categories) == pytest.approx(3 / 4)


def test_answer_is_plain_generation_after_the_question_and_stream(tmp_path):
    model, _ = tiny_models.build_tiny_live_model(tmp_path)
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12)]
    for uid in ('a', 'b'):
        write_video(str(tmp_path / f'{uid}.mp4'), frames, fps=2)   # 6 s each
    ds, _ = coin_benchmark(COIN, 'step', video_root=str(tmp_path), split='test')
    assert len(ds) == 5   # durations read from the videos
    seen = []
    real = model.template.encoder

    def recording_encoder():
        enc = real()
        seen.append(enc)
        return enc
    model.template.encoder = recording_encoder
    try:
        text = generate_after_stream(model, ds[0], max_new_tokens=4)
    finally:
        model.template.encoder = real
    assert isinstance(text, str)
    prompt = model.tokenizer.decode(seen[-1].ids)   # the last: the prompt, then the answer
    stream = ','.join(['<v>' * model.tokens_per_frame] * ds[0].num_frames)
    assert (f'\nUser: {question("step")}\n[{stream}]\nAssistant:') in prompt
