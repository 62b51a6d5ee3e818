"""Interleaved inputs with streaming-EOS labels (LIVE's training objective) and the collator.

The token layout comes only from the model's template (live_ros.model.template): this module walks
a dialogue's stream events through the template's DialogueEncoder, so training, evaluation and
the streaming session see identical ids. Labels are pre-shifted as in the reference:
``labels[p]`` is the target of the logits at position p. For the LIVE format:

- the last frame token of a frame predicts the interval token when the stream goes on
  silently (also after the last frame: the stream does not end);
- at the frame where the assistant speaks it predicts the response start token (the first
  token after the frame: one token, ``]`` + newline, on Llama-3) and every later token
  predicts the next one through the response's eos;
- the last frame token before a user turn learns the token that follows it (the stream
  closes, ``]`` ...), as the reference does in its livechat streams; other frame tokens, the
  system prompt and user text have no label;
- an answer to a user turn is learned from the token before ``Assistant`` through its eos;
- a turn with ``learn=False`` (context replayed as text, live_ros.data.windows) has none.

The loss weight is the stream weight w at frame decision positions and 1 elsewhere; the
streaming loss is ``sum(CE * weight) / number of labels`` (see ``streaming_loss``).

Each example also records, per assistant turn, the decision positions since the previous
turn and the positions that predict the response text, which the metrics read.
"""

from dataclasses import dataclass, field
from typing import List

import torch

from live_ros.data.format import stream_events

IGNORE = -100
FORMATS = ('live', 'per_frame', 'interleaved')


@dataclass
class TurnSpan:
    """Positions of one assistant turn, for the metrics.

    decisions: (position, frame index, should_speak) of the turn's frame decisions since the
    previous assistant turn; ``spontaneous``: the assistant speaks after a frame (it chose the
    time) rather than answering a user turn; ``text``: positions whose targets are the
    response text tokens and its eos; ``frame``: frame the response follows; ``after``:
    frames streamed after the response before the next turn (to measure late responses).
    """

    decisions: list
    text: list
    spontaneous: bool
    frame: int
    after: int = 0


@dataclass
class Example:
    """One tokenized dialogue: ids, pre-shifted labels, loss weights and metric positions."""

    input_ids: List[int]
    labels: List[int]
    weights: List[float]
    num_frames: int
    turns: List[TurnSpan] = field(default_factory=list)
    decision_token: int = None  # the 'stay silent' target at decision positions
    fmt: str = 'live'


def stream_of(dialogue, max_frames=None):
    """Stream events of a dialogue, cut before frame `max_frames` (training memory bound)."""
    events = []
    frames = 0
    for kind, value in stream_events(dialogue):
        if kind == 'frame':
            if max_frames is not None and frames >= max_frames:
                break
            frames += 1
        events.append((kind, value))
    return events, frames


def build_example(template, dialogue, fmt='live', stream_weight=1.0, max_frames=None,
                  system_prompt=None, label_user_frames=True):
    """Tokenize a dialogue with the model's template and attach labels and weights.

    ``label_user_frames`` False leaves the frame before a user turn unlabelled (how models
    trained before the reference's rule was adopted saw it).
    """
    if fmt not in FORMATS:
        raise ValueError(f'unknown format {fmt!r}; expected one of {FORMATS}')
    if fmt == 'per_frame':
        return build_per_frame_example(template, dialogue, max_frames, system_prompt,
                                       stream_weight)
    events, n_frames = stream_of(dialogue, max_frames)
    enc = template.encoder()
    system = dialogue.system if dialogue.system is not None else system_prompt
    enc.system(template.system_prompt if system is None else system)
    frame_pos = []  # (position, frame index, next event kind)
    replies = []  # (content start, span) per assistant turn, with the event index
    for i, (kind, value) in enumerate(events):
        if kind == 'frame':
            enc.frame()
            nxt = events[i + 1][0] if i + 1 < len(events) else 'end'
            if nxt == 'turn':
                turn = events[i + 1][1]
                nxt = turn.role if turn.learn else 'context'
            frame_pos.append((enc.frame_last[-1], value, nxt))
        elif value.role == 'user':
            enc.user(value.text)
        else:
            content = _assistant_turn(enc, value.text)
            if value.learn:
                replies.append((i, content, enc.response_spans[-1]))
    enc.flush()
    ids = list(enc.ids)
    labels = [IGNORE] * len(ids)
    weights = [1.0] * len(ids)
    overrides = dialogue.meta.get('frame_labels', {})   # data/augment.py
    for p, frame, nxt in frame_pos:
        override = overrides.get(frame, overrides.get(str(frame)))
        if override == 'ignore':
            continue
        if override == 'learn' and nxt == 'context' and fmt == 'live':
            labels[p] = ids[p + 1]   # speak here; what was said is not learned
        elif nxt in ('frame', 'end'):
            if fmt == 'live':
                labels[p] = template.interval_token_id
        elif nxt == 'user' and fmt == 'live' and label_user_frames:
            labels[p] = ids[p + 1]
        elif nxt == 'assistant' and fmt == 'live':
            labels[p] = ids[p + 1]
            # tokens between the frame and the response span (a no-op for Llama-3's ']\n')
            span_start = next(s for _, _, (s, _) in replies if s > p)
            for q in range(p + 1, span_start - 1):
                labels[q] = ids[q + 1]
        weights[p] = stream_weight
    for _, _, (start, stop) in replies:
        for q in range(start - 1, stop - 1):
            labels[q] = ids[q + 1]
    turns = _live_turns(events, frame_pos, replies)
    return Example(ids, labels, weights, n_frames, turns, template.interval_token_id, fmt)


def build_per_frame_example(template, dialogue, max_frames=None, system_prompt=None,
                            stream_weight=1.0):
    """Tokenize a dialogue in the per-frame layout (a baseline), with labels on every reply.

    Every frame is a turn the model must answer: after each frame comes ``Assistant:``; where
    the ground truth is silent the reply is empty (eos right after the prompt), so silence is
    a text reply the model learns. Its frame decision is the first reply token.
    """
    events, n_frames = stream_of(dialogue, max_frames)
    enc = template.encoder()
    system = dialogue.system if dialogue.system is not None else system_prompt
    enc.system(template.system_prompt if system is None else system)
    eos = template.eos_token_id
    replies = []  # (content start, span, is_silent, frame index, event index)
    frame = -1
    for i, (kind, value) in enumerate(events):
        if kind == 'frame':
            enc.frame()
            frame = value
            nxt = events[i + 1] if i + 1 < len(events) else None
            if nxt is None or nxt[0] == 'frame':
                enc.assistant_prefix()
                content = len(enc.ids)
                enc.assistant_generated([eos])
                replies.append((content, enc.response_spans[-1], True, frame, i))
        elif value.role == 'user':
            enc.user(value.text)
        else:
            content = _assistant_turn(enc, value.text)
            replies.append((content, enc.response_spans[-1], False, frame, i))
    enc.flush()
    ids = list(enc.ids)
    labels = [IGNORE] * len(ids)
    weights = [1.0] * len(ids)
    for content, (start, stop), silent, _, i in replies:
        for q in range(start - 1, stop - 1):
            labels[q] = ids[q + 1]
        if silent or events[i - 1][0] == 'frame':
            weights[content - 1] = stream_weight
    turns, pending = [], []
    for content, (start, stop), silent, frame, i in replies:
        if silent:
            pending.append((content - 1, frame, False))
            continue
        if i > 0 and events[i - 1][0] == 'frame':  # spoke on its own: this reply decided it
            pending.append((content - 1, frame, True))
        turns.append(turn_span(events, i, content, stop, frame, pending))
        pending = []
    return Example(ids, labels, weights, n_frames, turns, eos, 'per_frame')


def _assistant_turn(enc, text):
    """Append a known assistant turn; return where its content starts."""
    enc.assistant_prefix()
    content = len(enc.ids)
    enc.assistant_text(text)
    return content


def _live_turns(events, frame_pos, replies):
    """Group frame decisions by the assistant turn they lead to (LIVE / interleaved)."""
    by_event = {}
    j = 0
    frame_events = [i for i, (k, _) in enumerate(events) if k == 'frame']
    for i, p in zip(frame_events, frame_pos):
        by_event[i] = p
    turns = []
    pending = []
    for i, content, (start, stop) in replies:
        while j < len(frame_events) and frame_events[j] < i:
            p, k, nxt = by_event[frame_events[j]]
            if nxt != 'user':
                pending.append((p, k, nxt == 'assistant'))
            j += 1
        frame = sum(1 for x in frame_events if x < i) - 1
        turns.append(turn_span(events, i, content, stop, frame, pending))
        pending = []
    return turns


def turn_span(events, i, content, stop, frame, decisions):
    """Return the TurnSpan of the assistant turn at event ``i``, in any dialogue layout.

    ``content``: index of the turn's first content token; ``stop``: end of its response span;
    ``frame``: the last frame before it; ``decisions``: the frame decisions that lead to it.
    """
    spontaneous = i > 0 and events[i - 1][0] == 'frame'
    after = 0
    for kind, _ in events[i + 1:]:
        if kind != 'frame':
            break
        after += 1
    return TurnSpan(decisions, list(range(content - 1, stop - 1)), spontaneous, frame, after)


class StreamCollator:
    """Pad examples into a batch (right padding) and stack their frames.

    Each item is a dict with 'example' (an Example) and 'frames': a tensor of either cached
    frame features [n, T, C] (vision tower output) or pixels [n, 3, S, S]; the batch carries
    'frame_features' or 'pixel_values' accordingly, frames of all samples concatenated in
    order (their frame tokens are filled in that order).
    """

    def __init__(self, pad_token_id):
        self.pad_token_id = pad_token_id

    def __call__(self, items):
        """Collate a list of dataset items into model inputs."""
        exs = [it['example'] for it in items]
        n = max(len(e.input_ids) for e in exs)
        ids = torch.full((len(exs), n), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(exs), n), IGNORE, dtype=torch.long)
        weights = torch.zeros((len(exs), n), dtype=torch.float32)
        mask = torch.zeros((len(exs), n), dtype=torch.long)
        for b, e in enumerate(exs):
            L = len(e.input_ids)
            ids[b, :L] = torch.tensor(e.input_ids)
            labels[b, :L] = torch.tensor(e.labels)
            weights[b, :L] = torch.tensor(e.weights)
            mask[b, :L] = 1
        batch = {'input_ids': ids, 'labels': labels, 'loss_weights': weights,
                 'attention_mask': mask}
        frames = [it['frames'][:e.num_frames] for it, e in zip(items, exs)]
        key = 'pixel_values' if frames[0].dim() == 4 else 'frame_features'
        batch[key] = torch.cat(frames)
        return batch


def streaming_loss(logits, labels, weights):
    """Compute LIVE's weighted loss: sum(CE x weight) over labels / number of labels."""
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(),
                                           ignore_index=IGNORE, reduction='none')
    count = (labels >= 0).sum().clamp(min=1)
    return (ce * weights.flatten()).sum() / count
