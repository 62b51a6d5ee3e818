"""live-convert: annotations -> streaming dialogue JSON (what live-train and live-eval read).

    live-convert subtitles MEDIA SUBS OUT.json [--topic T] [--split-at S]
    live-convert subtitles FOLDER OUT.json          (every X.srt / X.vtt beside its media X)
    live-convert ego4d-narration | coin | goalstep | coin-<task> ANNOTATIONS OUT.json

Subtitles are the format a person writes by hand (live_ros.data.subtitles); MEDIA is a video
file or a rosbag2 with an image topic. ``--split-at S`` writes OUT.train.json (the stream up
to S s) and OUT.test.json (the rest) for a train / test split in time. The other kinds
convert public data sets' annotations (live_ros.data.converters, data/coin.py).
"""

import argparse
import json
import os
import sys

from live_ros.data.coin import TASKS as COIN_TASKS
from live_ros.data.format import save_dialogues

DATASET_KINDS = ['ego4d-narration', 'coin', 'goalstep'] + [f'coin-{t}' for t in COIN_TASKS]


def _parser():
    p = argparse.ArgumentParser(prog='live-convert', description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 2)[2])
    kinds = p.add_subparsers(dest='kind', required=True, metavar='KIND')
    s = kinds.add_parser('subtitles', help='hand-written SRT / WebVTT subtitles of a video '
                                           'or bag (Q: / A: cues are questions and answers)')
    s.add_argument('paths', nargs='+', metavar='PATH',
                   help='MEDIA SUBS OUT.json, or FOLDER OUT.json for a folder of pairs')
    s.add_argument('--topic', default=None,
                   help='image topic of a bag (needed when it has more than one)')
    s.add_argument('--fps', type=float, default=2.0, help="stream rate (the model's; paper: 2)")
    s.add_argument('--instruction', default=None,
                   help='user turn that opens each stream when the subtitles have no Q: cue '
                        'at 0 (default: a narration request)')
    s.add_argument('--split-at', type=float, default=None, metavar='SECONDS',
                   help='also split each stream in time: OUT.train.json before, '
                        'OUT.test.json from SECONDS on')
    for kind in DATASET_KINDS:
        d = kinds.add_parser(kind, help='COIN benchmark' if kind.startswith('coin-') else
                             f'{kind} annotations')
        d.add_argument('annotations', help='annotation JSON file')
        d.add_argument('output', help='dialogue file to write (.json or .jsonl)')
        d.add_argument('--video-root', default='', help='folder of the videos (<uid>.mp4)')
        d.add_argument('--fps', type=float, default=2.0, help='stream rate (the paper: 2)')
        d.add_argument('--split', default=None, help='COIN subset (training / testing)')
        d.add_argument('--video-uids', default=None,
                       help='JSON list of Ego4D video uids: the split to convert')
        d.add_argument('--seed', type=int, default=0, help='seed of the random query times')
        d.add_argument('--rewrite-lm', default=None, help='local causal LM dir for rewriting')
    return p


def convert_subtitles(a, error):
    """Convert subtitles: return [(output path, dialogues)]."""
    from live_ros.data.subtitles import (DEFAULT_INSTRUCTION, pairs_in_folder,
                                         subtitle_dialogues)
    if len(a.paths) == 2:
        pairs, out = pairs_in_folder(a.paths[0]), a.paths[1]
    elif len(a.paths) == 3:
        pairs, out = [(a.paths[0], a.paths[1])], a.paths[2]
    else:
        error('subtitles takes MEDIA SUBS OUT.json or FOLDER OUT.json')
    instruction = DEFAULT_INSTRUCTION if a.instruction is None else a.instruction
    parts = [subtitle_dialogues(media, subs, a.fps, a.topic, instruction, a.split_at)
             for media, subs in pairs]
    here = os.path.dirname(os.path.abspath(out))
    for d in (d for p in parts for d in p):   # the JSON moves with its media
        d.video = os.path.relpath(d.video, here)
        d.meta['subtitles'] = os.path.relpath(d.meta['subtitles'], here)
    if a.split_at is None:
        return [(out, [d for p in parts for d in p])]
    stem, ext = os.path.splitext(out)
    return [(f'{stem}.train{ext or ".json"}', [p[0] for p in parts]),
            (f'{stem}.test{ext or ".json"}', [p[1] for p in parts])]


def convert_dataset(a):
    """Convert a public data set's annotations: return [(output path, dialogues)]."""
    from live_ros.data import converters
    if a.kind == 'ego4d-narration':
        uids = None
        if a.video_uids:
            with open(a.video_uids) as f:
                uids = json.load(f)
        ds = converters.ego4d_narration_streams(a.annotations, a.video_root, a.fps,
                                                video_uids=uids)
    elif a.kind == 'coin':
        ds = converters.coin_dialogues(a.annotations, a.video_root, a.fps, a.split, a.seed)
    elif a.kind == 'goalstep':
        ds = converters.goalstep_dialogues(a.annotations, a.video_root, a.fps, a.seed)
    else:
        from live_ros.data.coin import coin_benchmark
        ds, _ = coin_benchmark(a.annotations, a.kind[5:], a.video_root, a.fps, a.split or 'test')
    if a.rewrite_lm:
        from live_ros.data.rewrite import rewrite
        ds = rewrite(ds, a.rewrite_lm)
    return [(a.output, ds)]


def main(argv=None):
    """Command-line entry point (live-convert); a bad input exits 2 with its reason."""
    p = _parser()
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    from live_ros.data.bag import BagError
    from live_ros.data.sources import SourceError
    from live_ros.data.subtitles import SubtitleError
    try:
        outputs = convert_subtitles(a, p.error) if a.kind == 'subtitles' else convert_dataset(a)
    except (SubtitleError, BagError, SourceError, FileNotFoundError) as exc:
        p.exit(2, f'live-convert: error: {exc}\n')
    for path, dialogues in outputs:
        save_dialogues(dialogues, path)
        turns = sum(len(d.turns) for d in dialogues)
        print(f'{len(dialogues)} dialogues ({turns} turns) -> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
