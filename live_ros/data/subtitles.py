"""Subtitles a person writes by hand (SRT, WebVTT) -> streaming dialogues of their media.

The annotation a robotics team can write in any subtitle editor while watching its own
recording (a video file or a rosbag2 image topic):

- each cue is a narration, spoken at the first frame at or after the cue's start time;
- a cue starting ``Q:`` is a user question asked at its start, ``A:`` the answer to it,
  given at once after the question (as the streaming session answers; its own start only
  has to be no earlier than the question's);
- a ``Q:`` cue at 0 with no ``A:`` after it is the instruction of the stream; without one the
  stream opens with a narration request (``--instruction``), acknowledged at once as the
  embedded default learned it.

Cue end times only matter for checking: a cue may not start before the previous one ended
(an ``A:`` may start while its ``Q:`` shows), and no cue may start after the media ends.
Errors name the subtitle file's line.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from live_ros.data.format import Dialogue, Turn

EPS = 1e-6
SUBTITLE_EXTS = ('.srt', '.vtt')
MEDIA_EXTS = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.mcap', '.db3')
DEFAULT_INSTRUCTION = 'Narrate what happens in real time.'
# what the embedded default answers a narration request with (data/synthetic.NARRATE_ACK):
# a fine-tune from it keeps that habit instead of inventing an event at t = 0
NARRATION_ACK = 'OK, I will narrate what happens.'
_TIME = re.compile(r'^(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})$')


class SubtitleError(ValueError):
    """A subtitle file that cannot become a dialogue; the message names the line."""


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: when it shows, its text, the kind of turn it is, where it was written."""

    start: float
    end: float
    text: str
    line: int

    @property
    def kind(self) -> str:
        """'question', 'answer' or 'narration', by the cue's prefix."""
        head = self.text[:2].upper()
        return {'Q:': 'question', 'A:': 'answer'}.get(head, 'narration')

    @property
    def body(self) -> str:
        """The text without its Q: / A: prefix."""
        return self.text[2:].strip() if self.kind != 'narration' else self.text


def parse_time(text: str, path: str, line: int) -> float:
    """'00:01:02,500' (SRT) or '01:02.500' / '00:01:02.500' (WebVTT) -> seconds."""
    m = _TIME.match(text.strip())
    if not m:
        raise SubtitleError(f'{path}:{line}: {text.strip()!r} is not a time '
                            '(hh:mm:ss,mmm or mm:ss.mmm)')
    hours, minutes, seconds, millis = m.groups()
    if int(minutes) >= 60 or int(seconds) >= 60:
        raise SubtitleError(f'{path}:{line}: {text.strip()!r}: minutes and seconds go to 59')
    return (int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
            + int(millis.ljust(3, '0')) / 1000.0)


def _blocks(lines):
    """Yield (first line number, [lines]) of the blank-line separated blocks."""
    block, first = [], None
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip('\r\n').lstrip('\ufeff')
        if text.strip():
            first = number if not block else first
            block.append(text)
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def read_subtitles(path: str) -> list[Cue]:
    """Read an .srt or .vtt file into cues in file order; SubtitleError on malformed input."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in SUBTITLE_EXTS:
        raise SubtitleError(f'{path}: subtitles must be .srt or .vtt, not {ext or "no suffix"}')
    with open(path, encoding='utf-8-sig') as f:
        lines = f.readlines()
    blocks = list(_blocks(lines))
    if ext == '.vtt':
        if not blocks or not blocks[0][1][0].startswith('WEBVTT'):
            raise SubtitleError(f'{path}:1: a WebVTT file starts with the line WEBVTT')
        blocks = [b for b in blocks[1:] if not b[1][0].startswith(('NOTE', 'STYLE', 'REGION'))]
    cues = []
    for first, block in blocks:
        timing = next((i for i, s in enumerate(block) if '-->' in s), None)
        if timing is None or timing > 1:   # after an optional cue number / identifier
            raise SubtitleError(f'{path}:{first}: a cue needs a timing line '
                                '"start --> end" (after an optional cue number)')
        line = first + timing
        left, _, right = block[timing].partition('-->')
        start = parse_time(left, path, line)
        end = parse_time(right.split()[0] if right.split() else '', path, line)
        if end < start:
            raise SubtitleError(f'{path}:{line}: the cue ends before it starts')
        text = ' '.join(' '.join(block[timing + 1:]).split())
        text = re.sub(r'<[^>]+>', '', text).strip()   # WebVTT / SRT styling tags
        if not text:
            raise SubtitleError(f'{path}:{line}: the cue has no text')
        if text[:2].upper() in ('Q:', 'A:') and not text[2:].strip():
            raise SubtitleError(f'{path}:{line}: {text[:2]} with nothing after it')
        cues.append(Cue(start, end, text, line))
    if not cues:
        raise SubtitleError(f'{path}: no cues')
    return cues


def check_cues(cues: list[Cue], path: str, last_frame: float | None = None,
               fps: float = 2.0) -> None:
    """Refuse cues out of order, overlapping, answering nothing, or after the last frame."""
    for prev, cue in zip(cues, cues[1:]):
        if cue.start < prev.start - EPS:
            raise SubtitleError(f'{path}:{cue.line}: the cue starts before the cue at line '
                                f'{prev.line}: cues must be in time order')
        answering = cue.kind == 'answer' and prev.kind == 'question'
        if cue.start < prev.end - EPS and not answering:
            raise SubtitleError(
                f'{path}:{cue.line}: the cue starts at {cue.start:.3f} s, while the cue at line '
                f'{prev.line} shows until {prev.end:.3f} s (overlapping cues)')
    for i, cue in enumerate(cues):
        if cue.kind == 'answer' and (i == 0 or cues[i - 1].kind != 'question'):
            raise SubtitleError(f'{path}:{cue.line}: an A: cue must follow a Q: cue')
        if last_frame is not None and ceil_frame_time(cue.start, fps) > last_frame + EPS:
            raise SubtitleError(
                f'{path}:{cue.line}: the cue starts at {cue.start:.3f} s, past the end of the '
                f'media (its last frame at {fps:g} fps is at {last_frame:.3f} s)')


def ceil_frame_time(t: float, fps: float) -> float:
    """Return the first frame time at or after t: the frame after which the event is seen."""
    return math.ceil(t * fps - EPS) / fps


def cues_to_turns(cues: list[Cue], fps: float, instruction: str = DEFAULT_INSTRUCTION):
    """Cues -> turns on the frame grid (times in media seconds).

    Two narrations on one frame are joined into one response, as the session can say only
    one thing after a frame.
    """
    turns = []
    rest = cues
    if cues[0].kind == 'question' and cues[0].start <= EPS and \
            (len(cues) < 2 or cues[1].kind != 'answer'):
        turns.append(Turn('user', 0.0, cues[0].body))
        rest = cues[1:]
    elif instruction:
        turns.append(Turn('user', 0.0, instruction))
    if turns and not (rest and rest[0].kind == 'narration' and rest[0].start <= EPS):
        turns.append(Turn('assistant', 0.0, NARRATION_ACK))
    for cue in rest:
        t = ceil_frame_time(cue.start, fps)
        role = 'user' if cue.kind == 'question' else 'assistant'
        last = turns[-1] if turns else None
        if (role == 'assistant' and last is not None and last.role == 'assistant'
                and abs(last.time - t) < EPS and cue.kind == 'narration'):
            turns[-1] = Turn('assistant', t, f'{last.text} {cue.body}')
            continue
        if cue.kind == 'answer':   # the session answers a question at once, as here
            t = turns[-1].time
        turns.append(Turn(role, t, cue.body))
    return turns


def media_duration(media: str, topic: str | None = None) -> float:
    """Seconds of stream a video file or a bag topic holds (first to last frame)."""
    from live_ros.data.sources import parse_source
    source = parse_source(media)
    if source.kind == 'bag':
        from live_ros.data.bag import BagImages
        bag = BagImages(source.target, topic)
        try:
            stamps = [stamp for stamp, _, _ in bag.messages()]
        finally:
            bag.close()
        return (stamps[-1] - stamps[0]) * 1e-9 if stamps else 0.0
    if source.kind != 'file':
        raise SubtitleError(f'{media}: subtitles go with a video file or a rosbag2, '
                            f'not a {source.kind}')
    if not os.path.isfile(media):
        raise SubtitleError(f'{media}: no such video file')
    from live_ros.data.video import video_info
    _, count, duration = video_info(media)
    if count <= 0:
        raise SubtitleError(f'{media}: OpenCV reads no frames from it')
    return duration


def subtitle_dialogues(media: str, subtitles: str, fps: float = 2.0, topic: str | None = None,
                       instruction: str = DEFAULT_INSTRUCTION,
                       split_at: float | None = None) -> list[Dialogue]:
    """One media file and its subtitles -> [dialogue], or [before, after] with ``split_at``.

    The split is by time (train on the first part, test on the last): a cue belongs to the
    part its frame is in; the second part is its own stream from ``split_at`` (``start``),
    opening with the same instruction.
    """
    cues = read_subtitles(subtitles)
    # the last frame time every reader reaches (a decoder may stop one source frame short)
    end = math.floor(media_duration(media, topic) * fps + EPS) / fps - 1.0 / fps
    check_cues(cues, subtitles, end, fps)
    meta = {'source': 'subtitles', 'subtitles': os.path.abspath(subtitles)}
    if topic:
        meta['topic'] = topic
    video = os.path.abspath(media)
    if split_at is None:
        return [Dialogue(video, fps, end, cues_to_turns(cues, fps, instruction), meta=meta)]
    split = ceil_frame_time(split_at, fps)
    if not 0 < split < end:
        raise SubtitleError(f'--split-at {split_at} s is not inside the media (0 .. {end} s)')
    head = [c for c in cues if ceil_frame_time(c.start, fps) < split - EPS]
    tail = [c for c in cues if ceil_frame_time(c.start, fps) >= split - EPS]
    if not head or not tail:
        raise SubtitleError(f'--split-at {split_at} s leaves no cue on one side')
    if tail[0].kind == 'answer':
        raise SubtitleError(f'{subtitles}:{tail[0].line}: --split-at {split_at} s falls between '
                            'this answer and its question')
    shifted = [Cue(c.start - split, c.end - split, c.text, c.line) for c in tail]
    if cues[0].kind == 'question' and cues[0].start <= EPS and cues[1:2] and \
            cues[1].kind != 'answer':   # the stream's instruction opens the test part too
        shifted.insert(0, Cue(0.0, 0.0, cues[0].text, cues[0].line))
    parts = []
    parts.append(Dialogue(video, fps, split - 1.0 / fps, cues_to_turns(head, fps, instruction),
                          meta={**meta, 'part': 'train'}))
    parts.append(Dialogue(video, fps, end - split, cues_to_turns(shifted, fps, instruction),
                          meta={**meta, 'part': 'test'}, start=split))
    return parts


def pairs_in_folder(folder: str) -> list[tuple[str, str]]:
    """(media, subtitles) pairs of a folder: X.srt / X.vtt beside X.<video>, X.mcap or bag X/."""
    from live_ros.data.bag import is_bag
    pairs = []
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in SUBTITLE_EXTS:
            continue
        media = [os.path.join(folder, stem + e) for e in MEDIA_EXTS
                 if os.path.isfile(os.path.join(folder, stem + e))]
        if is_bag(os.path.join(folder, stem)):
            media.append(os.path.join(folder, stem))
        if len(media) != 1:
            found = ', '.join(media) or 'none'
            raise SubtitleError(f'{os.path.join(folder, name)}: want one media file named '
                                f'{stem}.<video ext> or a bag {stem}/ beside it (found: {found})')
        pairs.append((media[0], os.path.join(folder, name)))
    if not pairs:
        raise SubtitleError(f'{folder}: no .srt or .vtt files')
    return pairs
