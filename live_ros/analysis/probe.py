"""Do the frame tokens carry the synthetic world's facts? Linear and MLP probes.

``python -m live_ros.analysis.probe [--train 60] [--test 20] [--seconds 20] --out FILE``

Frozen vision features of synthetic streams (train-split seeds fit the probe, test-split seeds
score it) are pooled the way a LIVE model would pool them (global token + k x k grid) at each
resolution; a probe per fact is fitted on the flattened tokens of one frame (what is visible:
each shape's colour and cell, the tower's height and top block) or of two consecutive frames
(what changed: the event kind and its subject). The question it answers: are the facts the
narration needs in the frame tokens, or does the LLM have to find something that is not there?
The tower runs once per frame and resolution; every grid is pooled from the same hidden states.
"""

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from live_ros.analysis import analysis_run
from live_ros.data.synthetic import FPS, SHAPES, SyntheticWorld
from live_ros.data.synthetic_sets import seeds

KINDS = ('none', 'appear', 'disappear', 'recolour', 'move', 'stack', 'clear')
SUBJECTS = ('none',) + SHAPES + ('tower',)


def frame_facts(world, frame):
    """Labels of one frame: what is visible, and what changed since the previous frame."""
    s = world.state_at(frame / FPS)
    facts = {}
    for shape in SHAPES:
        colour, cell = s.objects.get(shape, ('absent', 'absent'))
        facts[f'{shape} colour'] = colour
        facts[f'{shape} cell'] = cell
    facts['tower height'] = str(len(s.tower))
    facts['tower top colour'] = s.tower[-1] if s.tower else 'none'
    event = next((e for e in world.events if e.frame == frame), None)
    facts['change kind'] = event.kind if event else 'none'
    facts['change subject'] = event.subject if event else 'none'
    return facts


def collect(split, n, seconds, offset=0):
    """Frames (RGB) and their facts for n worlds of a split, frames 0..seconds*FPS each."""
    frames, facts, first = [], [], []
    n_frames = int(seconds * FPS) + 1
    for seed in seeds(split, n, offset):
        world = SyntheticWorld(seed)
        world.events_until(n_frames)
        for f in range(n_frames):
            frames.append(world.render(f / FPS))
            facts.append(frame_facts(world, f))
            first.append(f == 0)
    return frames, facts, np.array(first)


@torch.no_grad()
def tower_hidden(tower, pixels, batch=32):
    """Last hidden states [N, 1 + P, C] of the frozen tower (CLS first)."""
    out = []
    for i in range(0, len(pixels), batch):
        out.append(tower(pixel_values=pixels[i:i + batch]).last_hidden_state.float())
    return torch.cat(out)


def pooled(hidden, pool):
    """Global token + the patch grid pooled to pool x pool (pool 0: global token only)."""
    cls = hidden[:, :1]
    if pool == 0:
        return cls
    n, p, c = hidden[:, 1:].shape
    g = int(round(p ** 0.5))
    grid = hidden[:, -g * g:].reshape(n, g, g, c).permute(0, 3, 1, 2)
    grid = F.adaptive_avg_pool2d(grid, pool).flatten(2).transpose(1, 2)
    return torch.cat([cls, grid], 1)


def fit_probe(x_train, y_train, x_test, n_classes, hidden=0, epochs=300, seed=0,
              standardise=True):
    """Train a softmax (hidden=0) or one-hidden-layer MLP probe; return its test predictions.

    ``standardise``: per-dimension mean / std of the training frames first (False: the raw
    tokens, as the connector receives them).
    """
    torch.manual_seed(seed)
    if standardise:
        mean, std = x_train.mean(0), x_train.std(0) + 1e-6
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    d = x_train.shape[1]
    if hidden:
        net = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.GELU(),
                                  torch.nn.Linear(hidden, n_classes))
    else:
        net = torch.nn.Linear(d, n_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2 if not hidden else 3e-3,
                            weight_decay=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(net(x_train), y_train).backward()
        opt.step()
    with torch.no_grad():
        return net(x_test).argmax(1)


def run(sizes, pools, n_train, n_test, seconds, hidden, standardise=True):
    """Probe accuracy per (size, pool) and fact; plus the majority-class baseline."""
    from live_ros.model.backbones import resolve
    from live_ros.model.config import preset
    from live_ros.model.preprocess import preprocess_frames
    from live_ros.model.vision import load_vision_tower
    cfg = preset('default')
    tower = load_vision_tower(resolve(cfg.vision), dtype=torch.float32)
    tr_frames, tr_facts, tr_first = collect('train', n_train, seconds)
    te_frames, te_facts, te_first = collect('test', n_test, seconds)
    names = list(tr_facts[0])
    classes = {n: sorted({f[n] for f in tr_facts + te_facts}) for n in names}
    ys = {n: (torch.tensor([classes[n].index(f[n]) for f in tr_facts]),
              torch.tensor([classes[n].index(f[n]) for f in te_facts])) for n in names}
    report = {'train_frames': len(tr_frames), 'test_frames': len(te_frames),
              'majority': {}, 'probes': {}}
    for n in names:
        counts = np.bincount(ys[n][0].numpy(), minlength=len(classes[n]))
        report['majority'][n] = float((ys[n][1] == int(counts.argmax())).float().mean())
    for size in sizes:
        t0 = time.time()
        enc = {}
        for tag, frames in (('train', tr_frames), ('test', te_frames)):
            pixels = preprocess_frames(frames, size, cfg.image_mean, cfg.image_std,
                                       cfg.pad_color, cfg.resize_filter)
            enc[tag] = tower_hidden(tower, pixels)
        encode_s = (time.time() - t0) / (len(tr_frames) + len(te_frames))
        for pool in pools:
            key = f'{size}px/{"cls" if pool == 0 else f"cls+{pool}x{pool}"}'
            xs = {t: pooled(h, pool).flatten(1) for t, h in enc.items()}
            firsts = {'train': tr_first, 'test': te_first}
            row = {'encode_ms_per_frame': round(1000 * encode_s, 1),
                   'tokens_per_frame': 1 + pool * pool}
            for n in names:
                y_tr, y_te = ys[n]
                x_tr, x_te = xs['train'], xs['test']
                if n.startswith('change'):
                    # two consecutive frames of one stream (frame 0 has no previous one)
                    x_tr, y_tr = pair(x_tr, firsts['train']), y_tr[~firsts['train']]
                    x_te, y_te = pair(x_te, firsts['test']), y_te[~firsts['test']]
                right = fit_probe(x_tr, y_tr, x_te, len(classes[n]), hidden,
                                  standardise=standardise) == y_te
                row[n] = round(float(right.float().mean()), 3)
                if n.startswith('change'):
                    # accuracy on the frames where something did change (the hard part)
                    event = y_te != classes[n].index('none')
                    row[n + ' (events only)'] = round(float(right[event].float().mean()), 3)
            report['probes'][key] = row
            print(json.dumps({key: row}), flush=True)
    return report


def pair(x, first):
    """Rows [previous frame, this frame, difference] for every frame that has a previous one."""
    idx = np.nonzero(~first)[0]
    prev, cur = x[idx - 1], x[idx]
    return torch.cat([prev, cur, cur - prev], 1)


def main(argv=None):
    p = argparse.ArgumentParser(prog='live-probe', description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[112, 224],
                   help='frame sizes (px) to encode at')
    p.add_argument('--pools', type=int, nargs='+', default=[0, 2, 3, 4],
                   help='grid sizes k (k x k pooled patch tokens; 0 = global token only)')
    p.add_argument('--train', type=int, default=60, help='train-split worlds')
    p.add_argument('--test', type=int, default=20, help='test-split worlds')
    p.add_argument('--seconds', type=float, default=20.0, help='stream length per world')
    p.add_argument('--hidden', type=int, default=0, help='MLP hidden width (0: linear probe)')
    p.add_argument('--raw', action='store_true',
                   help='fit on the raw tokens (as the connector gets them), not standardised')
    a = analysis_run(p, argv)
    report = run(a.sizes, a.pools, a.train, a.test, a.seconds, a.hidden, not a.raw)
    report['args'] = vars(a)
    if a.out:
        with open(a.out, 'w') as f:
            json.dump(report, f, indent=2)
    print(json.dumps(report['majority']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
