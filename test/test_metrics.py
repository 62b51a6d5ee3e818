"""The four streaming metrics on crafted logits, checked against hand computation."""

import math

import pytest
import torch

from live_ros.data.collator import build_example
from live_ros.data.format import Dialogue, Turn
from live_ros.metrics import (decision_auc, dialogue_metrics, speaks, summarize,
                              turn_metrics)
from live_ros.template import StreamTemplate

tiny_models = pytest.importorskip('tiny_models')

DIALOGUE = Dialogue('synthetic:0', fps=2.0, duration=2.0, turns=[
    Turn('user', 0.0, 'Go.'), Turn('assistant', 1.0, 'Hi.'),
    Turn('user', 1.5, 'Q?'), Turn('assistant', 1.5, 'A.')])


@pytest.fixture(scope='module')
def example():
    t = StreamTemplate.from_tokenizer(tiny_models.build_tokenizer(), tokens_per_frame=2,
                                      system_prompt='Sys.')
    return build_example(t, DIALOGUE)


def _logits(ex, vocab=400, speak_at=(21,), wrong_text=()):
    """Logits that predict every label with p ~ 0.88, except where told otherwise."""
    logits = torch.zeros(len(ex.input_ids), vocab)
    for p, lab in enumerate(ex.labels):
        if lab >= 0:
            logits[p, lab] = 4.0
    for p in (18, 21):  # decisions: interval vs response start
        logits[p] = 0.0
        logits[p, ex.decision_token if p not in speak_at else ex.labels[21]] = 4.0
    for p in wrong_text:
        logits[p] = 0.0
        logits[p, 7] = 4.0
    return logits


def _ce_right(vocab=400):
    return -math.log(math.exp(4) / (math.exp(4) + vocab - 1))


def test_exact_start(example):
    ex = example
    labels = torch.tensor(ex.labels)
    m = turn_metrics(_logits(ex, wrong_text=(26,)), labels, ex.turns[0], ex.decision_token)
    ce_wrong = -math.log(1 / (math.exp(4) + 399))
    assert m['lm_ppl'] == pytest.approx(math.exp((4 * _ce_right() + ce_wrong) / 5), rel=1e-4)
    assert m['lm_correctness'] == pytest.approx(2 / 5)  # 24, 25 right; 26 wrong
    assert m['frame_diff'] == 0
    assert m['fluency'] == pytest.approx((2 + 2) / (2 + 5))


def test_early_start(example):
    ex = example
    m = turn_metrics(_logits(ex, speak_at=(18, 21)), torch.tensor(ex.labels), ex.turns[0],
                     ex.decision_token)
    assert m['frame_diff'] == 1 and m['fluency'] == pytest.approx(1 / 7)
    assert m['lm_correctness'] == 1.0


def test_late_start_uses_the_continued_stream(example):
    ex = example
    labels = torch.tensor(ex.labels)
    calls = []

    def late(turn):
        calls.append(turn.frame)
        return [True]

    m = turn_metrics(_logits(ex, speak_at=()), labels, ex.turns[0], ex.decision_token,
                     late=late)
    assert calls == [2] and m['frame_diff'] == 1 and m['fluency'] == pytest.approx(1 / 7)
    m = turn_metrics(_logits(ex, speak_at=()), labels, ex.turns[0], ex.decision_token,
                     late=lambda turn: [False])
    assert m['frame_diff'] == 1  # nothing spoken within the appended frame: its count


def test_threshold_rule():
    logits = torch.log(torch.tensor([[0.7, 0.3, 0.0 + 1e-9], [0.4, 0.6, 1e-9]]))
    assert speaks(logits, 0).tolist() == [False, True]
    assert speaks(logits, 0, threshold=0.725).tolist() == [True, True]
    assert speaks(logits, 0, threshold=0.5).tolist() == [False, True]


def test_dialogue_and_summary(example):
    ex = example
    r = dialogue_metrics(_logits(ex), ex, fps=2.0)
    assert r['time_diff'] == 0.0 and r['turns'] == 2
    assert r['lm_correctness'] == 1.0  # both turns
    assert r['fluency'] == 1.0  # only the spontaneous turn has decisions
    early = dialogue_metrics(_logits(ex, speak_at=(18, 21)), ex, fps=2.0)
    assert early['time_diff'] == 0.5
    s = summarize([r, early])
    assert s['time_diff'] == 0.25 and s['dialogues'] == 2
    assert s['fluency'] == pytest.approx((1 + 1 / 7) / 2)


def test_decision_auc(example):
    ex = example
    good = dialogue_metrics(_logits(ex), ex)
    assert good['decisions'] == [(pytest.approx(good['decisions'][0][0]), False),
                                 (pytest.approx(good['decisions'][1][0]), True)]
    assert summarize([good])['decision_auc'] == 1.0
    assert decision_auc([(0.9, True), (0.1, False)]) == 0.0
    assert decision_auc([(0.5, True), (0.5, False), (0.7, False)]) == 0.75
    assert decision_auc([(0.5, False)]) is None
