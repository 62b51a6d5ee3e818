"""The streaming dialogue format: one video plus timestamped user and assistant turns.

A dialogue is one JSON object::

    {
      "video": "clip.mp4" | "frames/" | "clip.safetensors" | "synthetic:<seed>",
      "fps": 2.0,                  # rate the stream is sampled at (frame k is at k / fps)
      "duration": 30.0,            # seconds of stream; frames are 0 .. n_frames - 1
      "start": 0.0,                # optional: where the stream begins in the video (s)
      "system": "...",             # optional system prompt (the model's default otherwise)
      "turns": [{"role": "user" | "assistant", "time": 3.5, "text": "..."}, ...],
                                   # a turn may carry "learn": false (context, no loss)
      "meta": {...}                # optional, free form (source, seed, task, ...)
    }

A turn at time t happens after every frame whose time is <= t has been seen (so a turn at
time 0 follows frame 0); a negative time places it before the first frame. Relative paths are
resolved against the JSON file's folder. A dataset file holds one dialogue, a list of them, or
one dialogue per line (``.jsonl``).
"""

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from live_ros.data.sources import parse_source

ROLES = ('user', 'assistant')
EPS = 1e-6


@dataclass
class Turn:
    """One utterance in the stream; time says which frames the speaker has seen.

    ``learn`` False marks context that is replayed but not learned (the older turns a
    context rebuild keeps as text, see live_ros.data.windows).
    """

    role: str
    time: float
    text: str
    learn: bool = True


@dataclass
class Dialogue:
    """A video stream with its timestamped turns (the unit the collator and metrics use)."""

    video: str
    fps: float = 2.0
    duration: float = 0.0
    turns: List[Turn] = field(default_factory=list)
    system: Optional[str] = None
    meta: dict = field(default_factory=dict)
    start: float = 0.0

    @property
    def num_frames(self):
        """Frames in the stream: frame k is at k / fps, for k / fps <= duration."""
        return int(math.floor(self.duration * self.fps + EPS)) + 1 if self.duration >= 0 else 0

    def frame_of(self, time):
        """Index of the last frame a turn at `time` has seen (-1: before the stream)."""
        if time < 0:
            return -1
        return min(int(math.floor(time * self.fps + EPS)), self.num_frames - 1)

    def to_dict(self):
        """Plain JSON-ready dict; drops empty optional fields."""
        out = asdict(self)
        if out['system'] is None:
            del out['system']
        if not out['meta']:
            del out['meta']
        if not out['start']:
            del out['start']
        for turn in out['turns']:
            if turn['learn']:
                del turn['learn']
        return out

    @classmethod
    def from_dict(cls, d, root=None):
        """Validate and build a dialogue; `root` resolves relative video paths."""
        for key in ('video', 'turns'):
            if key not in d:
                raise ValueError(f'dialogue without {key!r}: {sorted(d)}')
        turns = []
        for t in d['turns']:
            if t['role'] not in ROLES:
                raise ValueError(f'unknown role {t["role"]!r}; expected one of {ROLES}')
            turns.append(Turn(t['role'], float(t['time']), str(t['text']),
                              bool(t.get('learn', True))))
        video = str(d['video'])
        relative = not os.path.isabs(video) and not video.startswith('bag:')
        if root and relative and parse_source(video).kind in ('file', 'folder', 'bag'):
            video = os.path.normpath(os.path.join(root, video))
        dur = d.get('duration')
        if dur is None:
            dur = max([t.time for t in turns] + [0.0])
        out = cls(video=video, fps=float(d.get('fps', 2.0)), duration=float(dur),
                  turns=sorted(turns, key=lambda t: t.time), system=d.get('system'),
                  meta=dict(d.get('meta', {})), start=float(d.get('start', 0.0)))
        if out.fps <= 0:
            raise ValueError(f'fps must be > 0, got {out.fps}')
        return out


def load_dialogues(path):
    """Read a .json (one dialogue or a list) or .jsonl file into Dialogues."""
    root = os.path.dirname(os.path.abspath(path))
    with open(path) as f:
        if path.endswith('.jsonl'):
            items = [json.loads(line) for line in f if line.strip()]
        else:
            items = json.load(f)
    if isinstance(items, dict):
        items = [items]
    return [Dialogue.from_dict(d, root=root) for d in items]


def save_dialogues(dialogues, path):
    """Write Dialogues as a JSON list (or .jsonl), the inverse of load_dialogues."""
    dicts = [d.to_dict() for d in dialogues]
    with open(path, 'w') as f:
        if path.endswith('.jsonl'):
            for d in dicts:
                f.write(json.dumps(d) + '\n')
        else:
            json.dump(dicts, f, indent=1)


def stream_events(dialogue):
    """Yield ('frame', k) and ('turn', Turn) in stream order, the order a session sees them.

    Turns before the stream come first; a turn at time t follows frame frame_of(t). Turns
    after the last frame are dropped (they could never be answered in the stream).
    """
    by_frame = {}
    for turn in dialogue.turns:
        k = dialogue.frame_of(turn.time)
        if turn.time > dialogue.duration + EPS:
            continue
        by_frame.setdefault(k, []).append(turn)
    for turn in by_frame.get(-1, []):
        yield 'turn', turn
    for k in range(dialogue.num_frames):
        yield 'frame', k
        for turn in by_frame.get(k, []):
            yield 'turn', turn


def load_features(dialogue):
    """Pre-extracted per-frame features [n_frames, ...] from a .safetensors video source.

    The file holds a tensor 'frames' (one row per frame at the dialogue's fps), as written by
    live-train's feature cache.
    """
    from safetensors.torch import load_file
    feats = load_file(dialogue.video)['frames']
    return feats[:dialogue.num_frames]
