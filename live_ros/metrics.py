"""The paper's streaming dialogue metrics, from one teacher-forced pass per video.

Definitions (NOTES section 5, following the reference's stream evaluation), per assistant
turn of a dialogue, then averaged over the dialogue's turns and over dialogues:

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


def summarize(results):
    """Mean of each metric over dialogues that have it (the paper's per-video average)."""
    out = {}
    for key in ('lm_ppl', 'time_diff', 'fluency', 'lm_correctness'):
        vals = [r[key] for r in results if r.get(key) is not None]
        out[key] = sum(vals) / len(vals) if vals else None
    out['decision_auc'] = decision_auc([x for r in results for x in r.get('decisions', [])])
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
