"""The paper's streaming dialogue metrics, from one teacher-forced pass per video.

Two definitions. The headline of live-eval is ``reference_metrics``: the reference code's
exact rules (docs/REFERENCE.md; see its docstring). Below is live_ros's per-turn variant
(``turn_metrics`` / ``dialogue_metrics``), kept as a named extra: per assistant turn of a
dialogue, then averaged over the dialogue's turns and over dialogues:

- LM-PPL: exp(mean cross-entropy over the turn's response tokens): the positions that
  predict the response text and its eos (the template's ``Assistant:`` prefix is left out,
  so the three formats are scored on the same tokens).
- LM-Correctness: share of the response tokens predicted right (argmax) before the first
  wrong one.
- TimeDiff: for turns where the assistant speaks on its own, |frames between the predicted
  and the true response start| / fps, in seconds. The predicted start is the first frame
  decision of the turn where the rule below says "speak" (early: the distance to the true
  frame); if none speaks, the stream is continued without the response for up to
  min(frames that really follow, decisions in the turn - 1) frames and the first "speak"
  there gives the lateness (none: that whole count; nothing to append: 0).
- Fluency: share of the turn's frame decisions plus response tokens predicted right: exact
  start -> (decisions + correct response tokens) / (decisions + response tokens); early by d
  -> (decisions - d) / total; late -> (decisions - 1) / total. For a turn that answers a user
  query every decision should be silent: a first wrong "speak" at decision j gives j / total,
  else (decisions + correct response tokens) / total. Turns without decisions have no
  Fluency (as in the reference).

Also reported, threshold-free: decision AUC, the probability that a frame where the assistant
should speak gets a lower P(silent token) than a frame where it should stay silent (ties count
half) over all frame decisions of the turns: 0.5 is chance, 1 a perfect ranking.

Decision rule (the streaming session's): p = softmax at the decision position; the frame is
silent iff p[silent token] >= threshold and argmax(p) is the silent token, i.e. with
threshold 0 (the reference's evaluation default) plain argmax, with threshold θ > 0 the
silent token is zeroed when its probability is below θ. The silent token is the interval
token (LIVE, interleaved) or eos, the empty reply (per-frame).
"""

import math

import torch

from live_ros.data.collator import IGNORE


def speaks(logits, silent_token, threshold=0.0):
    """Apply the decision rule to logits [N, V] at decision positions -> bool [N]."""
    probs = logits.float().softmax(-1)
    p_silent = probs[:, silent_token]
    return (p_silent < threshold) | (probs.argmax(-1) != silent_token)


def turn_metrics(logits, labels, turn, silent_token, threshold=0.0, late=None):
    """Metrics of one assistant turn from full-sequence logits [L, V] and labels [L].

    ``late(turn)`` returns the decisions (bools) on the frames that follow the response,
    computed without the response in context; it is called only when the turn needs it.
    """
    out = {}
    pos = torch.tensor(turn.text, dtype=torch.long)
    n_lm = len(turn.text)
    correct = 0
    if n_lm:
        target = labels[pos]
        lg = logits[pos].float()
        out['lm_ppl'] = math.exp(float(torch.nn.functional.cross_entropy(lg, target)))
        wrong = (lg.argmax(-1) != target).nonzero()
        correct = int(wrong[0, 0]) if len(wrong) else n_lm
        out['lm_correctness'] = correct / n_lm
    n_dec = len(turn.decisions)
    if not n_dec:
        return out
    dec_pos = torch.tensor([p for p, _, _ in turn.decisions], dtype=torch.long)
    said = speaks(logits[dec_pos], silent_token, threshold).tolist()
    total = n_dec + n_lm
    if not turn.spontaneous:
        first = said.index(True) if True in said else None
        out['fluency'] = (n_dec + correct) / total if first is None else first / total
        return out
    if True in said:
        diff = n_dec - said.index(True) - 1  # > 0: early by diff frames
    else:
        n_append = min(turn.after, n_dec - 1)
        diff = 0
        if n_append > 0:
            more = list(late(turn))[:n_append] if late else []
            diff = -(more.index(True) + 1) if True in more else -n_append
    out['frame_diff'] = abs(diff)
    if diff == 0:
        out['fluency'] = (n_dec + correct) / total
    elif diff > 0:
        out['fluency'] = (n_dec - diff) / total
    else:
        out['fluency'] = (n_dec - 1) / total
    return out


def decision_scores(logits, example):
    """Return (P(silent token), should speak) at every frame decision of the example's turns."""
    pairs = [(p, speak) for t in example.turns for p, _, speak in t.decisions]
    if not pairs:
        return []
    pos = torch.tensor([p for p, _ in pairs], dtype=torch.long)
    probs = logits[pos].float().softmax(-1)[:, example.decision_token].tolist()
    return [(q, s) for q, (_, s) in zip(probs, pairs)]


def decision_auc(scores):
    """Threshold-free ranking quality of speak decisions (None without both kinds)."""
    speak = [q for q, s in scores if s]
    silent = [q for q, s in scores if not s]
    if not speak or not silent:
        return None
    silent_t = torch.tensor(silent)
    wins = sum(float((silent_t > q).sum()) + 0.5 * float((silent_t == q).sum())
               for q in speak)
    return wins / (len(speak) * len(silent))


def dialogue_metrics(logits, example, threshold=0.0, fps=2.0, late=None):
    """Per-dialogue means of the four metrics (None where the dialogue has no such turn)."""
    labels = torch.tensor(example.labels, dtype=torch.long)
    per_turn = [turn_metrics(logits, labels, t, example.decision_token, threshold, late)
                for t in example.turns]
    out = {}
    for key in ('lm_ppl', 'lm_correctness', 'frame_diff', 'fluency'):
        vals = [m[key] for m in per_turn if key in m]
        out[key] = sum(vals) / len(vals) if vals else None
    out['time_diff'] = None if out['frame_diff'] is None else out.pop('frame_diff') / fps
    out.pop('frame_diff', None)
    out['turns'] = len(example.turns)
    out['decisions'] = decision_scores(logits, example)
    return out


def reference_metrics(logits, example, frame_token_id, eos_token_id, threshold=0.0, fps=2.0,
                      late=None):
    """Compute the four metrics exactly as the reference's stream evaluation defines them.

    The sequence is cut into turns at every eos (a turn runs from the token after the
    previous eos through its own eos, frames and user text included). In a turn, learned
    frame-token positions are its stream decisions (the frame before a user turn included);
    every other learned position is a language position (``Assistant``, ``:`` and the
    content through eos). LM-PPL / LM-Correctness / TimeDiff / Fluency follow from them as in
    the module docstring, with two differences from ``turn_metrics``: every turn with
    decisions gets TimeDiff and Fluency by the same rule (no query-answer rule), and the last
    turn is never late (no frames to append). A dialogue without a turn of a kind gets the
    reference's defaults (PPL 1, TimeDiff 0, Fluency 1, Correctness 1).

    ``late(prefix_stop, n_frames)`` returns the decisions on ``n_frames`` frames appended
    after position ``prefix_stop - 1`` with the response left out (evaluation/teacher_forced).
    """
    ids = torch.tensor(example.input_ids, dtype=torch.long)
    labels = torch.tensor(example.labels, dtype=torch.long)
    silent = example.decision_token
    per_frame = max(1, _tokens_per_frame(example, frame_token_id))
    stops = ((ids == eos_token_id).nonzero()[:, 0] + 1).tolist()
    starts = [0] + stops[:-1]
    ppls, diffs, fluencies, corrects = [], [], [], []
    for r, (a, b) in enumerate(zip(starts, stops)):
        learn = labels[a:b] != IGNORE
        if not learn.any():
            continue
        is_v = ids[a:b] == frame_token_id
        stream = is_v & learn
        lm = learn & ~is_v
        n_frames = int(is_v.sum()) // per_frame
        lg = logits[a:b]
        if lm.any():
            target = labels[a:b][lm]
            lm_logits = lg[lm].float()
            ppls.append(math.exp(float(torch.nn.functional.cross_entropy(lm_logits, target))))
            wrong = (lm_logits.argmax(-1) != target).nonzero()
            n_correct = int(wrong[0, 0]) if len(wrong) else int(target.numel())
            corrects.append(n_correct / target.numel())
        if not stream.any():
            continue
        said = speaks(lg[stream], silent, threshold)
        n_stream = int(stream.sum())
        if said.any():
            diff = n_stream - int(said.nonzero()[0, 0]) - 1
        elif r == len(stops) - 1:
            diff = 0
        else:
            nxt = int((ids[stops[r]:stops[r + 1]] == frame_token_id).sum()) // per_frame
            n_append = min(nxt, n_frames - 1)
            diff = 0
            if n_append > 0:
                last = a + int(stream.nonzero()[-1, 0])
                more = list(late(last + 1, n_append))[:n_append] if late else []
                diff = -(more.index(True) + 1) if True in more else -n_append
        diffs.append(abs(diff))
        if lm.any():
            total = n_stream + int(target.numel())
            if diff == 0:
                fluencies.append((n_stream + n_correct) / total)
            elif diff > 0:
                fluencies.append((n_stream - diff) / total)
            else:
                fluencies.append((n_stream - 1) / total)

    def mean(values, default):
        return sum(values) / len(values) if values else default
    return {'lm_ppl': mean(ppls, 1.0), 'time_diff': mean(diffs, 0.0) / fps,
            'fluency': mean(fluencies, 1.0), 'lm_correctness': mean(corrects, 1.0)}


def _tokens_per_frame(example, frame_token_id):
    """Frame tokens per frame of an example (all frames have the same count)."""
    n_v = sum(1 for i in example.input_ids if i == frame_token_id)
    return n_v // example.num_frames if example.num_frames else 0


def summarize(results):
    """Mean of each metric over dialogues that have it (the paper's per-video average).

    ``reference``: the reference-definition metrics (every dialogue has them, defaults
    included); the other keys are live_ros's per-turn variant (turn_metrics).
    """
    out = {}
    for key in ('lm_ppl', 'time_diff', 'fluency', 'lm_correctness'):
        vals = [r[key] for r in results if r.get(key) is not None]
        out[key] = sum(vals) / len(vals) if vals else None
    out['decision_auc'] = decision_auc([x for r in results for x in r.get('decisions', [])])
    refs = [r['reference'] for r in results if r.get('reference')]
    if refs:
        out['reference'] = {k: sum(x[k] for x in refs) / len(refs) for k in refs[0]}
    out['dialogues'] = len(results)
    return out


def longest_identical_run(texts):
    """Longest run of consecutive identical responses (a model stuck repeating itself)."""
    best = run = 0
    prev = None
    for text in texts:
        run = run + 1 if text == prev else 1
        prev = text
        best = max(best, run)
    return best
