"""Conversation augmentation: each of the four cases, down to the labels the collator makes."""

import random

import pytest

from live_ros.data.augment import augment, CORRECTION
from live_ros.data.collator import build_example, IGNORE
from live_ros.data.dataset import StreamDataset
from live_ros.data.format import Dialogue, Turn
from live_ros.testing.tiny_models import build_tiny_live_model

# 2 fps: frame k is at k / 2 s. A at frame 2, B at frame 6, C at frame 10.
DIALOGUE = Dialogue('synthetic:3', 2.0, 6.0, turns=[
    Turn('user', 0.0, 'Narrate.'), Turn('assistant', 1.0, 'A'),
    Turn('assistant', 3.0, 'B'), Turn('assistant', 5.0, 'C')])


class Draws:
    """Stands in for random.Random: picks turn A, the given fake, corrected or not."""

    def __init__(self, fake, corrected):
        self.fake, self.corrected = fake, corrected

    def choice(self, options):
        if self.fake in options or (self.fake is None and None in options):
            return self.fake
        return options[0]   # the first learned assistant turn: A

    def random(self):
        return 0.0 if self.corrected else 0.9


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    return build_tiny_live_model(tmp_path_factory.mktemp('augment'))[0].template


def frame_labels(template, dialogue):
    """Return the label at each frame's last token, by frame index."""
    ex = build_example(template, dialogue)
    ids = ex.input_ids
    last = [p for p, i in enumerate(ids) if i == template.frame_token_id
            and (p + 1 == len(ids) or ids[p + 1] != template.frame_token_id)]
    return [ex.labels[p] for p in last], ex


def texts(dialogue):
    return [(t.time, t.text, t.learn) for t in dialogue.turns if t.role == 'assistant']


def test_wrong_response_corrected_at_the_next_frame(template):
    out = augment(DIALOGUE, Draws('B', corrected=True))
    assert texts(out) == [(1.0, 'B', False), (1.5, CORRECTION + 'A', True), (3.0, 'B', True),
                          (5.0, 'C', True)]
    labels, _ = frame_labels(template, out)
    speak = template.response_start_id
    assert labels[2] == speak and labels[3] == speak   # speaks (wrongly), then corrects
    assert labels[4] == template.interval_token_id


def test_dropped_response_comes_one_frame_late(template):
    out = augment(DIALOGUE, Draws(None, corrected=True))
    assert texts(out)[0] == (1.5, 'A', True)
    labels, _ = frame_labels(template, out)
    assert labels[2] == IGNORE and labels[3] == template.response_start_id


def test_wrong_response_not_corrected_leaves_the_stream_after_it_unlearned(template):
    out = augment(DIALOGUE, Draws('', corrected=False))
    assert texts(out)[0] == (1.0, '', False)
    labels, ex = frame_labels(template, out)
    assert labels[2] == template.response_start_id
    assert labels[3:7] == [IGNORE] * 4   # up to B's frame
    assert labels[7] == template.interval_token_id
    assert len(ex.turns) == 2   # the wrong reply is context: B and C are the learned turns


def test_dropped_response_not_corrected(template):
    out = augment(DIALOGUE, Draws(None, corrected=False))
    assert [t for t, _, _ in texts(out)] == [3.0, 5.0]
    labels, _ = frame_labels(template, out)
    assert labels[2:7] == [IGNORE] * 5 and labels[6 + 1] == template.interval_token_id


def test_only_earlier_learned_responses_are_touched(template):
    one = Dialogue('synthetic:3', 2.0, 3.0, turns=[Turn('assistant', 1.0, 'A')])
    assert augment(one, random.Random(0)) is one
    for seed in range(30):   # C, the last response, is never changed
        out = augment(DIALOGUE, random.Random(seed))
        assert texts(out)[-1] == (5.0, 'C', True)
        assert DIALOGUE.turns[1].text == 'A'   # the original dialogue is not modified


def test_dataset_draws_a_new_augmentation_each_read(tmp_path):
    model, _ = build_tiny_live_model(tmp_path)
    ds = StreamDataset([DIALOGUE], model, augmentation=True)
    random.seed(1)
    seen = {tuple(ds[0]['example'].labels) for _ in range(20)}
    assert len(seen) > 2
    plain = StreamDataset([DIALOGUE], model)
    assert plain[0]['example'].labels == plain.examples[0].labels


def test_the_default_draws_follow_pythons_seeded_random():
    random.seed(7)
    first = [texts(augment(DIALOGUE)) for _ in range(10)]
    random.seed(7)
    assert [texts(augment(DIALOGUE)) for _ in range(10)] == first
