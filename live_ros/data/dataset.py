"""A torch Dataset over streaming dialogues, with an optional frame-feature cache.

The vision tower is frozen, so its output for a stream never changes: like the reference
(which pre-extracts SigLIP features), the cache encodes each stream once and keeps the frame
tokens [n_frames, T, C] in a .safetensors file named by a hash of the stream and the vision
settings. Training then runs only the connector and the LLM.
"""

import dataclasses
import hashlib
import json
import os

import torch

from live_ros.data.augment import augment
from live_ros.data.collator import build_example
from live_ros.data.format import load_dialogues, load_features
from live_ros.data.frames import dialogue_frames


def load_data(specs):
    """Dialogues from specs: 'synthetic:<split>:<n>[:<s>]' or dialogue JSON/JSONL paths."""
    from live_ros.data.synthetic_sets import parse_spec
    if isinstance(specs, str):
        specs = [specs]
    out = []
    for spec in specs:
        dialogues = parse_spec(spec)
        out += dialogues if dialogues is not None else load_dialogues(spec)
    return out


def feature_key(dialogue, cfg, n_frames):
    """Cache key: the stream (source, start, fps, frames) and the vision settings."""
    parts = {
        'video': dialogue.video, 'start': dialogue.start, 'fps': dialogue.fps,
        'n': n_frames, 'world': dialogue.meta.get('world'), 'vision': cfg.vision,
        'size': cfg.frame_size, 'mean': cfg.image_mean, 'std': cfg.image_std,
        'pad': cfg.pad_color, 'pool': cfg.pool, 'global': cfg.global_token,
    }
    if cfg.resize_filter != 'bicubic':  # keys of caches made before the setting stay valid
        parts['resize'] = cfg.resize_filter
    if dialogue.meta.get('topic'):  # one bag, several cameras
        parts['topic'] = dialogue.meta['topic']
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha1(blob).hexdigest()[:20]


@torch.no_grad()
def encode_stream(model, frames, batch_size=16):
    """Frozen vision tower output [n, T, C] for RGB frames (float32 on CPU)."""
    out = []
    for i in range(0, len(frames), batch_size):
        pixels = model.preprocess(frames[i:i + batch_size]).to(model.device)
        out.append(model.vision(pixels).float().cpu())
    return torch.cat(out)


class StreamDataset(torch.utils.data.Dataset):
    """Dialogues -> {'example': Example, 'frames': features [n, T, C] or pixels [n, 3, S, S]}.

    With `feature_cache` (a folder) frames are vision features, encoded on first use and read
    back afterwards; without it, preprocessed pixels (the vision tower then runs in the
    training step). A dialogue whose video is a .safetensors file is read as features.
    """

    def __init__(self, dialogues, model, fmt='live', stream_weight=1.0, max_frames=None,
                 feature_cache=None, system_prompt=None, label_user_frames=True,
                 augmentation=False):
        self.dialogues = list(dialogues)
        self.model = model
        self.fmt = fmt
        self.stream_weight = stream_weight
        self.max_frames = max_frames
        self.feature_cache = feature_cache
        self.system_prompt = system_prompt
        self.label_user_frames = label_user_frames
        # Conversation augmentation (data/augment.py): a fresh draw each time an item is read,
        # from Python's random, which the DataLoader seeds per worker and epoch.
        self.augmentation = augmentation
        self.examples = [self._example(d) for d in self.dialogues]

    def _example(self, dialogue):
        return build_example(self.model.template, dialogue, self.fmt, self.stream_weight,
                             self.max_frames, self.system_prompt, self.label_user_frames)

    def __len__(self):
        return len(self.dialogues)

    def frames(self, i):
        """Frame features or pixels of dialogue i (only the frames its example uses)."""
        d, n = self.dialogues[i], self.examples[i].num_frames
        if d.video.endswith('.safetensors'):
            return load_features(d)[:n]
        if self.feature_cache and 'window' in d.meta:
            # a context window (live_ros.data.windows): encode its whole stream once
            first = d.meta['window'][0]
            parent = dataclasses.replace(d, start=d.start - first / d.fps, turns=[],
                                         duration=(d.meta['parent_frames'] - 1) / d.fps)
            return self._cached(parent, parent.num_frames)[first:first + n]
        if self.feature_cache:
            return self._cached(d, n)
        return self.model.preprocess(dialogue_frames(d, n))

    def _cached(self, d, n):
        """Vision features of the first n frames of d, from the cache or encoded into it."""
        path = os.path.join(self.feature_cache,
                            feature_key(d, self.model.cfg, n) + '.safetensors')
        if os.path.isfile(path):
            from safetensors.torch import load_file
            return load_file(path)['frames']
        feats = encode_stream(self.model, dialogue_frames(d, n))
        os.makedirs(self.feature_cache, exist_ok=True)
        from safetensors.torch import save_file
        tmp = path + f'.{os.getpid()}.tmp'
        save_file({'frames': feats.contiguous()}, tmp)
        os.replace(tmp, path)
        return feats

    def prepare(self, desc='encoding frames'):
        """Fill the feature cache for every dialogue now (one pass, with a progress bar)."""
        if not self.feature_cache:
            return
        from live_ros.progress import progress
        for i in progress(range(len(self)), desc=desc, unit='video'):
            self.frames(i)

    def __getitem__(self, i):
        example = self.examples[i]
        if self.augmentation:
            example = self._example(augment(self.dialogues[i]))
        return {'example': example, 'frames': self.frames(i)}
