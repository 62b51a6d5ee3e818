"""Conversation augmentation: wrong or missed earlier responses, so the model looks at frames.

The released 8B-v1+ recipe trains with it. A model that learns only from correct histories
can lean on its own earlier words instead of the video; here one earlier learned response of a
training dialogue (never the last) is, at random, replaced by a wrong one (another response of
the dialogue, or an empty one) or dropped, and then half the time corrected at the next frame:

- wrong, corrected: the wrong text stays as unlearned context (the frame before it still
  learns to speak), and at the next frame the model learns "(Sorry, the last response is
  wrong) <the real one>"; needs more than one frame before the next turn;
- dropped, corrected: the response comes one frame late; the frame where it was due learns
  nothing (needs frames on both sides);
- wrong, not corrected: the wrong text is unlearned context and so is every frame decision
  after it up to the next turn;
- dropped, not corrected: the response is gone; the frame where it was due, and when a stream
  goes on after it every decision up to the next turn, learn nothing.

Frame decisions are steered through ``dialogue.meta['frame_labels']`` ({frame: 'learn' |
'ignore'}), which the collator reads. Applied per sample at training time
(``data.augmentation: true``), a fresh draw each time a dialogue is seen.
"""

import dataclasses
import random

from live_ros.data.format import stream_events, Turn

CORRECTION = '(Sorry, the last response is wrong) '


def augment(dialogue, rng=None):
    """Return an augmented copy of ``dialogue`` (the dialogue itself when nothing applies).

    ``rng`` defaults to Python's global random, which torch's DataLoader seeds per worker and
    epoch (a fresh Random() would seed itself from the OS and not repeat a run).
    """
    rng = rng or random
    events = list(stream_events(dialogue))
    assistant = [k for k, (kind, value) in enumerate(events)
                 if kind == 'turn' and value.role == 'assistant' and value.learn]
    if len(assistant) <= 1:
        return dialogue
    k = rng.choice(assistant[:-1])   # the last one: nothing after it depends on it
    real = events[k][1]
    fakes = sorted({events[j][1].text for j in assistant if events[j][1].text != real.text})
    fake = rng.choice(fakes + ['', None])   # None: the response is dropped
    after_frame = k > 0 and events[k - 1][0] == 'frame'
    frame = events[k - 1][1] if after_frame else None
    following = _frames_after(events, k)   # frame indices up to the next turn
    if rng.random() < 0.5:
        return _corrected(dialogue, real, fake, frame, following)
    return _uncorrected(dialogue, real, fake, frame, following)


def _frames_after(events, k):
    out = []
    for kind, value in events[k + 1:]:
        if kind != 'frame':
            break
        out.append(value)
    return out


def _corrected(dialogue, real, fake, frame, following):
    fps = dialogue.fps
    if fake is not None and len(following) > 1:
        later = following[0] / fps
        turns = _replace(dialogue.turns, real, Turn('assistant', real.time, fake, learn=False))
        turns.append(Turn('assistant', later, CORRECTION + real.text))
        labels = {frame: 'learn'} if frame is not None else {}
        return _with(dialogue, turns, labels)
    if fake is None and frame is not None and len(following) > 1:
        later = following[0] / fps
        turns = _replace(dialogue.turns, real, Turn('assistant', later, real.text))
        return _with(dialogue, turns, {frame: 'ignore'})
    return dialogue


def _uncorrected(dialogue, real, fake, frame, following):
    if fake is not None:
        turns = _replace(dialogue.turns, real, Turn('assistant', real.time, fake, learn=False))
        labels = {f: 'ignore' for f in following}
        if frame is not None:
            labels[frame] = 'learn'
        return _with(dialogue, turns, labels)
    turns = _replace(dialogue.turns, real, None)
    labels = {f: 'ignore' for f in following}
    if frame is not None:
        labels[frame] = 'ignore'
    return _with(dialogue, turns, labels)


def _replace(turns, old, new):
    """Put ``new`` where ``old`` was (None: remove it)."""
    return [new if t is old else t for t in turns if t is not old or new is not None]


def _with(dialogue, turns, labels):
    meta = dict(dialogue.meta)
    meta['frame_labels'] = {**meta.get('frame_labels', {}), **labels}
    # stable by time: a moved or corrected turn lands after what was said at the same time
    turns = sorted(turns, key=lambda t: t.time)
    return dataclasses.replace(dialogue, turns=turns, meta=meta)
