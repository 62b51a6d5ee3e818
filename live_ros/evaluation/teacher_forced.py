"""Teacher-forced metrics (one pass per video): LM-PPL, TimeDiff, Fluency, LM-Correctness.

As live_ros.metrics defines them, in the layout the model was trained with (``model_format``:
the model directory's train_config.yaml, else live), with the reference definitions beside
live_ros's per-turn variant.
"""

import os

import torch

from live_ros.data.collator import build_example
from live_ros.data.dataset import StreamDataset
from live_ros.data.format import Dialogue, Turn
from live_ros.metrics import dialogue_metrics, reference_metrics, speaks


def model_format(model_dir):
    """Training format recorded in a model dir (train_config.yaml), 'live' if none."""
    path = os.path.join(str(model_dir), 'train_config.yaml')
    if os.path.isfile(path):
        import yaml
        with open(path) as f:
            return (yaml.safe_load(f) or {}).get('data', {}).get('format', 'live')
    return 'live'


@torch.no_grad()
def _logits(model, input_ids, frames):
    if frames.dim() == 4:
        frames = model.vision(frames.to(model.device))
    embeds = model.connector(frames.to(model.device, model.dtype))
    ids = torch.tensor([input_ids], device=model.device)
    return model.lm(inputs_embeds=model.embed(ids, embeds)).logits[0].float().cpu()


def late_decisions(model, dialogue, turn, frames, fmt, threshold, system_prompt=None):
    """Decisions on the frames after a turn's true start, with the response left out."""
    k = turn.frame
    n = min(turn.after, len(turn.decisions) - 1)
    end = (k + n) / dialogue.fps
    kept = [t for t in dialogue.turns if dialogue.frame_of(t.time) < k]
    cut = Dialogue(dialogue.video, dialogue.fps, end, kept + [Turn('assistant', end, '.')],
                   dialogue.system, dialogue.meta, dialogue.start)
    ex = build_example(model.template, cut, fmt, system_prompt=system_prompt)
    pos = [p for p, f, _ in ex.turns[-1].decisions if f > k]
    logits = _logits(model, ex.input_ids, frames[:k + n + 1])
    return speaks(logits[pos], ex.decision_token, threshold).tolist()


def appended_decisions(model, input_ids, frames, prefix_stop, n, threshold):
    """Decisions on ``n`` frames appended after ``input_ids[:prefix_stop]`` (reference rule).

    The reference trims its cache after the turn's last frame decision and feeds the next
    frames as interval + frame tokens, the response left out; a full forward of the same
    ids gives the same logits.
    """
    per_frame = model.tokens_per_frame
    prefix = list(input_ids[:prefix_stop])
    k = prefix.count(model.frame_token_id) // per_frame
    n = min(n, len(frames) - k)
    if n <= 0:
        return []
    step = [model.interval_token_id] + [model.frame_token_id] * per_frame
    ids = prefix + step * n
    logits = _logits(model, ids, frames[:k + n])
    pos = [prefix_stop + (j + 1) * len(step) - 1 for j in range(n)]
    return speaks(logits[pos], model.interval_token_id, threshold).tolist()


def teacher_forced(model, dialogues, fmt='live', threshold=0.0, max_frames=None,
                   feature_cache=None):
    """Per-dialogue metrics from one teacher-forced pass each (plus late-start passes)."""
    ds = StreamDataset(dialogues, model, fmt, 1.0, max_frames, feature_cache)
    results = []
    for i, d in enumerate(ds.dialogues):
        ex, frames = ds.examples[i], ds.frames(i)
        logits = _logits(model, ex.input_ids, frames)

        def late(turn, d=d, frames=frames):
            return late_decisions(model, d, turn, frames, fmt, threshold)

        r = dialogue_metrics(logits, ex, threshold, d.fps, late)
        if fmt == 'live':
            def appended(stop, n, ex=ex, frames=frames):
                return appended_decisions(model, ex.input_ids, frames, stop, n, threshold)

            r['reference'] = reference_metrics(logits, ex, model.frame_token_id,
                                               model.eos_token_id, threshold, d.fps, appended)
        r['video'] = d.video
        results.append(r)
    return results
