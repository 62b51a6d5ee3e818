"""Streaming-EOS labels from the template, token by token, and the batch collator."""

import pytest
import torch

from live_ros.data.collator import build_per_frame_example
from live_ros.data.collator import (IGNORE, StreamCollator, build_example, stream_of,
                                    streaming_loss)
from live_ros.data.format import Dialogue, Turn
from live_ros.model.template import StreamTemplate

from live_ros.testing import tiny_models  # noqa: E402

V = '<v>'
# The hand-built dialogue: instruction after frame 0, silence at frame 1, the assistant speaks
# on its own after frame 2, a question after frame 3 answered at once, frame 4 silent.
DIALOGUE = Dialogue('synthetic:0', fps=2.0, duration=2.0, turns=[
    Turn('user', 0.0, 'Go.'), Turn('assistant', 1.0, 'Hi.'),
    Turn('user', 1.5, 'Q?'), Turn('assistant', 1.5, 'A.')])
# (token, label) per position, as docs/REFERENCE.md specifies the layout and the labels:
# '\n[' + frames joined by ',' + ']'; ']\nUser: '; '\nAssistant: ' + text + eos; the last
# frame token of a silent frame -> ','; of the frame where the assistant speaks -> ']\n',
# which -> 'Assistant' ... -> eos; before a user turn: the token that closes the stream (']\n',
# as the reference labels its livechat streams); user text: no label.
EXPECTED = [
    ('<|begin_of_text|>', None), ('S', None), ('y', None), ('s', None), ('.\n', None),
    ('\n', None), ('[', None), (V, None), (V, ']\n'),  # frame 0: the stream closes, user
    (']\n', None), ('User', None), (':', None), (' ', None), ('G', None), ('o', None),
    ('.\n', None), ('[', None),
    (V, None), (V, ','), (',', None),  # frame 1: stay silent
    (V, None), (V, ']\n'),  # frame 2: the assistant speaks
    (']\n', 'Assistant'), ('Assistant', ':'), (':', ' '), (' ', 'H'), ('H', 'i'), ('i', '.'),
    ('.', '<|eot_id|>'), ('<|eot_id|>', None),
    ('\n', None), ('[', None), (V, None), (V, ']\n'),  # frame 3: closes, the user asks
    (']\n', None), ('User', None), (':', None), (' ', None), ('Q', None),
    ('?\n', 'Assistant'), ('Assistant', ':'), (':', ' '), (' ', 'A'), ('A', '.'),
    ('.', '<|eot_id|>'), ('<|eot_id|>', None),
    ('\n', None), ('[', None), (V, None), (V, ','),  # frame 4: silent, the stream goes on
]


@pytest.fixture(scope='module')
def template():
    return StreamTemplate.from_tokenizer(tiny_models.build_tokenizer(), tokens_per_frame=2,
                                         system_prompt='Sys.')


def _show(template, i):
    return V if i == template.frame_token_id else template.tokenizer.decode([i])


def test_labels_match_notes_token_by_token(template):
    ex = build_example(template, DIALOGUE, stream_weight=2.0)
    got = [(_show(template, i), None if lab == IGNORE else _show(template, lab))
           for i, lab in zip(ex.input_ids, ex.labels)]
    assert got == EXPECTED
    assert template.response_start_id == ex.input_ids[22]  # ']\n' is one token, as Llama-3
    # stream weight w at frame decision positions, 1 elsewhere
    heavy = [p for p, w in enumerate(ex.weights) if w == 2.0]
    assert heavy == [8, 18, 21, 33, 49]
    assert ex.num_frames == 5


def test_turn_positions_for_metrics(template):
    ex = build_example(template, DIALOGUE)
    first, second = ex.turns
    assert first.spontaneous and first.frame == 2 and first.after == 1
    assert first.decisions == [(18, 1, False), (21, 2, True)]
    assert first.text == [24, 25, 26, 27, 28]  # predict ' ', 'H', 'i', '.', eos
    assert not second.spontaneous and second.decisions == [] and second.after == 1


def test_interleaved_has_no_stream_labels(template):
    live = build_example(template, DIALOGUE)
    inter = build_example(template, DIALOGUE, fmt='interleaved')
    assert inter.input_ids == live.input_ids
    decisions = {8, 18, 21, 33, 49}
    for p, (a, b) in enumerate(zip(live.labels, inter.labels)):
        assert b == (IGNORE if p in decisions else a)
    assert inter.labels[22] == live.labels[22]  # ']\n' -> 'Assistant' is part of the response


def test_per_frame_layout_answers_every_frame(template):
    ex = build_per_frame_example(template, DIALOGUE)
    text = [_show(template, i) for i in ex.input_ids]
    joined = ''.join(text)
    # frame 1 is answered with an empty reply; frame 4 too; frame 2 with the response
    assert joined.count('Assistant:<|eot_id|>') == 2
    assert 'Assistant: Hi.<|eot_id|>' in joined and 'Assistant: A.<|eot_id|>' in joined
    eos = template.eos_token_id
    silent = [p for p, _, speak in ex.turns[0].decisions if not speak]
    assert len(silent) == 1 and ex.labels[silent[0]] == eos
    speak = [p for p, _, s in ex.turns[0].decisions if s]
    assert _show(template, ex.labels[speak[0]]) == ' '
    assert ex.decision_token == eos


def test_max_frames_cuts_the_stream(template):
    events, n = stream_of(DIALOGUE, max_frames=2)
    assert n == 2 and [k for k, _ in events] == ['frame', 'turn', 'frame']
    ex = build_example(template, DIALOGUE, max_frames=2)
    assert ex.input_ids.count(template.frame_token_id) == 4 and ex.turns == []


def test_collator_pads_and_stacks_frames(template):
    a = build_example(template, DIALOGUE)
    b = build_example(template, DIALOGUE, max_frames=3)
    items = [{'example': a, 'frames': torch.zeros(5, 2, 8)},
             {'example': b, 'frames': torch.ones(5, 2, 8)}]
    batch = StreamCollator(pad_token_id=template.eos_token_id)(items)
    assert batch['input_ids'].shape == (2, len(a.input_ids))
    assert batch['frame_features'].shape == (8, 2, 8)  # 5 + 3 frames, in batch order
    assert int((batch['input_ids'] == template.frame_token_id).sum()) == 8 * 2
    assert batch['attention_mask'][1].sum() == len(b.input_ids)
    assert (batch['labels'][1, len(b.input_ids):] == IGNORE).all()
    pixels = StreamCollator(0)([{'example': a, 'frames': torch.zeros(5, 3, 4, 4)}])
    assert pixels['pixel_values'].shape == (5, 3, 4, 4)


def test_streaming_loss_weights_frame_positions():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 7)
    labels = torch.tensor([[IGNORE, 3, 5, 1]])
    weights = torch.tensor([[1.0, 2.0, 1.0, 1.0]])
    ce = torch.nn.functional.cross_entropy(logits[0, 1:], labels[0, 1:], reduction='none')
    expected = (ce[0] * 2 + ce[1] + ce[2]) / 3
    assert torch.allclose(streaming_loss(logits, labels, weights), expected)


def test_context_turns_are_not_learned(template):
    """Turns replayed as text (learn=False) carry no labels and are no metric turns."""
    d = Dialogue('synthetic:0', fps=2.0, duration=1.0, turns=[
        Turn('user', -1.0, 'Old?', learn=False), Turn('assistant', -1.0, 'Old.', learn=False),
        Turn('assistant', 0.5, 'Hi.')])
    ex = build_example(template, d)
    learned = [template.tokenizer.decode([lab]) for lab in ex.labels if lab != IGNORE]
    assert ''.join(learned) == ',]\nAssistant: Hi.<|eot_id|>,'  # frame 0, 1, end
    assert len(ex.turns) == 1 and ex.turns[0].spontaneous
    assert Dialogue.from_dict(d.to_dict()).turns == d.turns
    assert 'learn' not in d.to_dict()['turns'][2]


def test_user_frame_labels_can_be_left_out(template):
    """label_user_frames=False: the frames before user turns (8, 33) carry no label."""
    on = build_example(template, DIALOGUE)
    off = build_example(template, DIALOGUE, label_user_frames=False)
    assert [p for p, (a, b) in enumerate(zip(on.labels, off.labels)) if a != b] == [8, 33]
    assert off.labels[8] == off.labels[33] == IGNORE
