"""The pixels of a dialogue's stream at its fps: the synthetic world, a video, folder or bag.

Everything is read lazily (``iter_dialogue_frames``), so an hour of stream never sits in
memory; files go through the package's one video reader (data/video.py). Feature files
(.safetensors) hold no pixels: see data.format.load_features.
"""


from live_ros.data.sources import parse_source


def iter_dialogue_frames(dialogue, chunk=16, max_frames=None):
    """Yield the stream's RGB uint8 frames in lists of up to ``chunk``."""
    n = dialogue.num_frames if max_frames is None else min(max_frames, dialogue.num_frames)
    src = dialogue.video
    if src.endswith('.safetensors'):
        raise ValueError(f'{src} holds features, not pixels; use load_features()')
    source = parse_source(src)
    if source.kind == 'synthetic':
        from live_ros.data.synthetic import SyntheticWorld
        world = SyntheticWorld(source.target, **dialogue.meta.get('world', {}))
        frames = (world.render(dialogue.start + k / dialogue.fps) for k in range(n))
    elif source.kind == 'bag':
        from live_ros.data.bag import BagImages
        bag = BagImages(source.target, dialogue.meta.get('topic'))
        frames = (f.rgb for f, _ in zip(bag.frames(dialogue.fps, dialogue.start, fill=True),
                                        range(n)))
    elif source.kind in ('file', 'folder'):
        from live_ros.data.video import iter_frames
        frames = (rgb for _, rgb in iter_frames(src, dialogue.fps, max_frames=n,
                                                start=dialogue.start))
    else:
        raise ValueError(f'{src}: a dialogue cannot be read from a live {source.kind}')
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == chunk:
            yield batch
            batch = []
    if batch:
        yield batch


def dialogue_frames(dialogue, max_frames=None):
    """List the stream's RGB uint8 frames (HxWx3)."""
    return [frame for chunk in iter_dialogue_frames(dialogue, max_frames=max_frames)
            for frame in chunk]
