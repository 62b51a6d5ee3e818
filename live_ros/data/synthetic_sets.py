"""Data sets of synthetic streams: disjoint seed ranges and the spec live-train reads.

    synthetic:<split>:<n>[:<duration s>[:<mode>[:<offset>]]]

names the first ``n`` worlds (data/synthetic.py) of a split; a single stream of one world is
a source (``synthetic:<seed>``, data/sources.py), a different thing.
"""

from live_ros.data.synthetic import SyntheticWorld

SPLITS = {'train': (0, 100_000), 'val': (100_000, 200_000), 'test': (200_000, 300_000)}


def seeds(split, n, offset=0):
    """Return the first n seeds of a split (train / val / test ranges never overlap)."""
    lo, hi = SPLITS[split]
    if offset + n > hi - lo:
        raise ValueError(f'{split} has only {hi - lo} seeds')
    return range(lo + offset, lo + offset + n)


def synthetic_dialogues(split, n, duration=30.0, offset=0, mode=None, **world):
    """Build ground-truth dialogues from the first n seeds of a split."""
    return [SyntheticWorld(s, **world).dialogue(duration, mode)
            for s in seeds(split, n, offset)]


def parse_spec(spec):
    """'synthetic:<split>:<n>[:<duration s>[:<mode>[:<offset>]]]' -> dialogues, else None.

    ``mode``: narration, assist, mixed, or 'auto' (one of the first two per seed, the
    default); ``offset`` skips that many seeds of the split (e.g. held-out seeds not used
    before).
    """
    parts = spec.split(':')
    if parts[0] != 'synthetic' or len(parts) < 3 or parts[1] not in SPLITS:
        return None
    duration = float(parts[3]) if len(parts) > 3 else 30.0
    mode = parts[4] if len(parts) > 4 and parts[4] != 'auto' else None
    if mode not in (None, 'narration', 'assist', 'mixed'):
        raise ValueError(f'unknown synthetic mode {mode!r} in {spec!r}')
    offset = int(parts[5]) if len(parts) > 5 else 0
    return synthetic_dialogues(parts[1], int(parts[2]), duration, offset, mode)
