"""The four streaming metrics on crafted logits, checked against hand computation."""

import math

import pytest
import torch

from live_ros.data.collator import build_example
from live_ros.data.format import Dialogue, Turn
from live_ros.metrics import (decision_auc, dialogue_metrics, reference_metrics, speaks,
                              summarize, turn_metrics)
from live_ros.model.template import StreamTemplate

from live_ros.testing import tiny_models  # noqa: E402

DIALOGUE = Dialogue('synthetic:0', fps=2.0, duration=2.0, turns=[
    Turn('user', 0.0, 'Go.'), Turn('assistant', 1.0, 'Hi.'),
    Turn('user', 1.5, 'Q?'), Turn('assistant', 1.5, 'A.')])


def _template():
    return StreamTemplate.from_tokenizer(tiny_models.build_tokenizer(), tokens_per_frame=2,
                                         system_prompt='Sys.')


@pytest.fixture(scope='module')
def example():
    return build_example(_template(), DIALOGUE)


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


# -- the reference's definitions -----------------------------------------------------------
# The sequence splits at eos into turn 0 = [0, 30) (frame 0, 'Go.', frames 1-2, 'Hi.') and
# turn 1 = [30, 46) (frame 3, 'Q?', 'A.'); frame 4 after the last eos is in no turn. Turn 0's
# decisions: 8 (before the user: learns ']\n'), 18 (silent), 21 (speak); its language
# positions: 22-28 ('Assistant', ':', ' ', 'H', 'i', '.', eos: 7, where live_ros's variant
# scores 5). Turn 1: decision 33 (before the user), language 39-44 (6).


def _reference(ex, logits, late=None):
    t = _template()
    return reference_metrics(logits, ex, t.frame_token_id, t.eos_token_id, 0.0, 2.0, late)


def test_reference_scores_assistant_prefix_and_user_frames(example):
    ex = example
    m = _reference(ex, _logits(ex, wrong_text=(26,)))
    ce_wrong = -math.log(1 / (math.exp(4) + 399))
    # turn 0: 7 language tokens, 26 wrong (4 right before it); turn 1: all 6 right
    ppl0 = math.exp((6 * _ce_right() + ce_wrong) / 7)
    assert m['lm_ppl'] == pytest.approx((ppl0 + math.exp(_ce_right())) / 2, rel=1e-4)
    assert m['lm_correctness'] == pytest.approx((4 / 7 + 1) / 2)
    # turn 0 "speaks" first at its first decision (8, before the user): early by 2 frames;
    # turn 1 speaks at its only decision: exact
    assert m['time_diff'] == pytest.approx((2 + 0) / 2 / 2.0)
    assert m['fluency'] == pytest.approx(((3 - 2) / (3 + 7) + (1 + 6) / 7) / 2)


def test_reference_late_start_and_defaults(example):
    ex = example
    logits = _logits(ex, speak_at=())
    logits[8] = 0.0
    logits[8, ex.decision_token] = 4.0  # silent before the user too: no speak in turn 0
    calls = []

    def late(stop, n):
        calls.append((stop, n))
        return [True]

    m = _reference(ex, logits, late)
    # appended after the turn's last decision (21): min(1 frame in turn 1, 3 - 1) = 1
    assert calls == [(22, 1)]
    assert m['time_diff'] == pytest.approx((1 + 0) / 2 / 2.0)
    assert m['fluency'] == pytest.approx(((3 - 1) / 10 + 1.0) / 2)
    silent = Dialogue('synthetic:0', fps=2.0, duration=1.0, turns=[])
    t = _template()
    empty = build_example(t, silent)
    d = reference_metrics(torch.zeros(len(empty.input_ids), 400), empty, t.frame_token_id,
                          t.eos_token_id)
    assert d == {'lm_ppl': 1.0, 'time_diff': 0.0, 'fluency': 1.0, 'lm_correctness': 1.0}
