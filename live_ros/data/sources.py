"""Where a stream's frames come from: one spec grammar for every tool.

    camera:<index>  (or a bare index)      a camera device
    synthetic:<seed>                       the procedural world of data/synthetic.py
    bag:<path>, or a rosbag2 folder / .mcap / .db3   an image topic of a recording
    <folder>                               an image folder (frames in name order)
    <file>                                 a video file OpenCV can read

video_publisher, live-infer, the demo and the dialogues' ``video`` field (training and
evaluation) all read a source through ``parse_source``. A data set of many synthetic streams
is a different thing with a grammar of its own (``synthetic:<split>:<n>...``, data specs of
live-train and live-eval, data/synthetic_sets.parse_spec); given here, it is refused with a
pointer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

KINDS = ('camera', 'synthetic', 'bag', 'folder', 'file')


class SourceError(ValueError):
    """A source spec that names nothing readable, with the reason."""


@dataclass(frozen=True)
class Source:
    """A parsed source: its kind and what it names (camera index, world seed or a path)."""

    kind: str
    target: object

    @property
    def is_live(self) -> bool:
        """True for a camera: it has no timing of its own to keep, frames come when they come."""
        return self.kind == 'camera'


def parse_source(spec: str) -> Source:
    """Parse a source spec (module docstring); SourceError says what is wrong."""
    spec = (spec or '').strip()
    if not spec:
        raise SourceError('no source given (a video file, folder, bag, camera:<index> or '
                          'synthetic:<seed>)')
    head, sep, rest = spec.partition(':')
    if head == 'synthetic' and sep:
        if not rest.lstrip('-').isdigit():
            raise SourceError(
                f'{spec!r}: a synthetic stream is synthetic:<seed> (an integer); '
                'synthetic:<split>:<n>[...] names a data set for live-train / live-eval')
        return Source('synthetic', int(rest))
    if spec.isdigit() or (head == 'camera' and sep):
        index = spec if spec.isdigit() else rest
        if not index.isdigit():
            raise SourceError(f'{spec!r}: a camera is camera:<index>, e.g. camera:0')
        return Source('camera', int(index))
    if head == 'bag' and sep:
        return Source('bag', rest)
    from live_ros.data.bag import is_bag
    if is_bag(spec):
        return Source('bag', spec)
    if os.path.isdir(spec):
        return Source('folder', spec)
    return Source('file', spec)
