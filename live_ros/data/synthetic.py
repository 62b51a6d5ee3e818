"""A procedural streaming world with exact ground truth, for training and testing LIVE.

Ego4D and COIN are not available here, so this world stands in for them: coloured shapes on a
plain background appear, move, change colour and disappear, and a multi-step activity (stacking
a tower of blocks, step 1..n, then taking it down) runs beside them. Every event happens on a
frame of the 2 fps grid, so the ground truth is exact: narrations at event frames, mid-stream
questions answered from the state at that frame, and "tell me when X happens" requests
answered at the frame where X first becomes visible.

Everything is a pure function of the seed: the event timeline is generated lazily from one
random stream and is the same whatever the requested length (a longer stream extends a shorter
one), and frame t is rendered on demand from the state at t. Data sets of many worlds, their
seeds in disjoint train / val / test ranges: synthetic_sets.py.
"""

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import cv2
import numpy as np

from live_ros.data.format import Dialogue, Turn

FPS = 2.0
SHAPES = ('circle', 'square', 'triangle')
COLOURS = {
    'red': (220, 40, 40), 'green': (40, 175, 70), 'blue': (40, 80, 230),
    'yellow': (240, 210, 30),
}
BACKGROUNDS = ((128, 128, 128), (100, 104, 112), (150, 140, 122), (86, 98, 86))
# shape cells: centres in unit coordinates (x, y) of a 2 x 2 grid on the left of the frame
CELLS = {
    'top left': (0.18, 0.25), 'top right': (0.50, 0.25),
    'bottom left': (0.18, 0.70), 'bottom right': (0.50, 0.70),
}
TOWER_X, BLOCK_W, BLOCK_H, TABLE_Y = 0.84, 0.22, 0.11, 0.93
NUMBERS = ('no', 'one', 'two', 'three', 'four', 'five')
NARRATE = (
    'Narrate what happens in real time.',
    'Please describe the changes in the scene as they happen.',
    'Tell me about every change you see, concisely.',
)
STOP_NARRATING = (
    'Stop narrating, please.',
    'That is enough narration for now.',
    'You can stop describing the scene.',
)
STOP_ACK = 'OK, I will stay quiet.'
# A request to narrate is acknowledged at once, as the session answers every user turn there
# (a reply the model must otherwise invent, and did: a made-up event at t = 0).
NARRATE_ACK = 'OK, I will narrate what happens.'
QUESTIONS = {
    'count': 'How many shapes are there?',
    'tower': 'How many blocks are in the tower?',
    'next': 'What is the next step?',
}
# Segment kinds of a 'mixed' stream and their odds: narration on request, an assistant that
# only answers and reports what it was asked to watch for, and stretches where nobody speaks.
SEGMENTS = (('narration', 0.35), ('assist', 0.4), ('quiet', 0.25))
SEGMENT_FRAMES = (40, 200)  # 20 s .. 100 s at 2 fps


@dataclass(frozen=True)
class State:
    """What is visible: shape -> (colour, cell), the tower's block colours and target height."""

    objects: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    tower: Tuple[str, ...] = ()
    tower_target: int = 3


@dataclass(frozen=True)
class Event:
    """A change that first shows on `frame`; `text` is its narration."""

    frame: int
    kind: str
    subject: str
    text: str


class SyntheticWorld:
    """One seeded world: its event timeline, its frames and its dialogues."""

    def __init__(self, seed, size=224, noise=6.0):
        self.seed = int(seed)
        self.size = int(size)
        self.noise = float(noise)
        self._rng = random.Random(self.seed)
        self.background = BACKGROUNDS[self._rng.randrange(len(BACKGROUNDS))]
        objects = {}
        free = list(CELLS)
        self._rng.shuffle(free)
        for shape in self._rng.sample(SHAPES, self._rng.randint(1, 2)):
            objects[shape] = (self._rng.choice(sorted(COLOURS)), free.pop())
        self._frames = [0]
        self._states = [State(objects, (), self._rng.choice((3, 4)))]
        self.events: List[Event] = []

    # -- timeline --------------------------------------------------------------------------
    def _extend(self):
        """Draw the next event from the seed's random stream (prefix-stable)."""
        rng = self._rng
        frame = self._frames[-1] + rng.randint(3, 8)
        s = self._states[-1]
        objs = dict(s.objects)
        free = [c for c in CELLS if c not in {cell for _, cell in objs.values()}]
        hidden = [sh for sh in SHAPES if sh not in objs]
        options = []
        if hidden and free:
            options += [('appear', 2.0)]
        if objs:
            options += [('disappear', 1.2 if len(objs) > 1 else 0.5), ('recolour', 1.5)]
        if objs and free:
            options += [('move', 1.5)]
        if len(s.tower) < s.tower_target:
            options += [('stack', 2.0)]
        else:
            options += [('clear', 3.0)]
        kind = rng.choices([k for k, _ in options], [w for _, w in options])[0]
        tower, target = s.tower, s.tower_target
        if kind == 'appear':
            shape = rng.choice(hidden)
            colour, cell = rng.choice(sorted(COLOURS)), rng.choice(free)
            objs[shape] = (colour, cell)
            text = f'A {colour} {shape} appears.'
        elif kind == 'disappear':
            shape = rng.choice(sorted(objs))
            colour, _ = objs.pop(shape)
            text = f'The {colour} {shape} disappears.'
        elif kind == 'recolour':
            shape = rng.choice(sorted(objs))
            colour, cell = objs[shape]
            new = rng.choice([c for c in sorted(COLOURS) if c != colour])
            objs[shape] = (new, cell)
            text = f'The {shape} turns {new}.'
        elif kind == 'move':
            shape = rng.choice(sorted(objs))
            colour, _ = objs[shape]
            cell = rng.choice(free)
            objs[shape] = (colour, cell)
            text = f'The {colour} {shape} moves to the {cell}.'
        elif kind == 'stack':
            colour = rng.choice(sorted(COLOURS))
            tower = tower + (colour,)
            shape = 'tower'
            text = f'Step {len(tower)} of {target}: a {colour} block is stacked.'
            if len(tower) == target:
                text += ' The tower is complete.'
        else:
            shape = 'tower'
            tower, target = (), rng.choice((3, 4))
            text = 'The tower is taken down.'
        self._frames.append(frame)
        self._states.append(State(objs, tower, target))
        self.events.append(Event(frame, kind, shape, text))

    def events_until(self, frame):
        """Return all events on frames <= `frame` (extends the timeline as needed)."""
        while self._frames[-1] <= frame:
            self._extend()
        return [e for e in self.events if e.frame <= frame]

    def state_at(self, t):
        """Return the visible state at stream time t (seconds)."""
        frame = int(math.floor(t * FPS + 1e-6))
        self.events_until(frame)
        return self._states[bisect.bisect_right(self._frames, frame) - 1]

    # -- pixels ----------------------------------------------------------------------------
    def render(self, t):
        """RGB uint8 frame (size x size x 3) of the world at time t."""
        s, n = self.state_at(t), self.size
        img = np.empty((n, n, 3), np.uint8)
        img[:] = self.background
        table_top = int(TABLE_Y * n)
        cv2.rectangle(img, (int((TOWER_X - BLOCK_W * 0.75) * n), table_top),
                      (int((TOWER_X + BLOCK_W * 0.75) * n), n - 1), (60, 45, 35), -1)
        r = int(0.12 * n)
        for shape, (colour, cell) in sorted(s.objects.items()):
            cx, cy = (int(v * n) for v in CELLS[cell])
            rgb = COLOURS[colour]
            if shape == 'circle':
                cv2.circle(img, (cx, cy), r, rgb, -1, cv2.LINE_AA)
            elif shape == 'square':
                cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), rgb, -1)
            else:
                pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
                cv2.fillPoly(img, [pts], rgb, cv2.LINE_AA)
        bw, bh = int(BLOCK_W * n / 2), int(BLOCK_H * n)
        x = int(TOWER_X * n)
        for i, colour in enumerate(s.tower):
            y1 = table_top - i * bh
            cv2.rectangle(img, (x - bw, y1 - bh + 1), (x + bw, y1), COLOURS[colour], -1)
            cv2.rectangle(img, (x - bw, y1 - bh + 1), (x + bw, y1), (30, 30, 30), 1)
        if self.noise > 0:
            frame = int(math.floor(t * FPS + 1e-6))
            rng = np.random.default_rng((self.seed, frame))
            jitter = rng.normal(0.0, self.noise, img.shape).astype(np.float32)
            img = np.clip(img.astype(np.float32) + jitter, 0, 255).astype(np.uint8)
        return img

    # -- dialogues -------------------------------------------------------------------------
    def dialogue(self, duration=30.0, mode=None):
        """Return the ground-truth streaming dialogue over [0, duration].

        mode 'narration': the user asks for real-time narration at t=0 and every event is
        narrated on its frame, with a few questions in between. mode 'assist': no narration;
        the assistant answers questions and speaks up on its own only for "tell me when"
        requests. The default picks one of the two per seed. mode 'mixed' (what an always-on
        deployment sees, for streams of minutes): segments of 20-100 s, each narration (asked
        for, then stopped), assist, or quiet (nobody speaks while the world changes).
        """
        n_frames = int(math.floor(duration * FPS + 1e-6)) + 1
        events = [e for e in self.events_until(n_frames - 1) if e.frame < n_frames]
        if mode == 'mixed':
            return self._mixed(events, n_frames, duration)
        rng = random.Random(f'dialogue-{self.seed}-{duration}')
        mode = mode or rng.choice(('narration', 'assist'))
        turns, busy = [], {e.frame for e in events} | {0}
        if mode == 'narration':
            turns += [Turn('user', 0.0, rng.choice(NARRATE)), Turn('assistant', 0.0, NARRATE_ACK)]
            turns += [Turn('assistant', e.frame / FPS, e.text) for e in events]
        else:
            turns += self._requests(rng, events, n_frames, busy)
        free = [f for f in range(1, n_frames) if f not in busy]
        n_q = max(1, n_frames // (24 if mode == 'narration' else 14))
        for f in sorted(rng.sample(free, min(n_q, len(free)))):
            q, a = self.question(rng, f / FPS)
            turns += [Turn('user', f / FPS, q), Turn('assistant', f / FPS, a)]
        turns.sort(key=lambda tr: tr.time)
        return Dialogue(video=f'synthetic:{self.seed}', fps=FPS, duration=(n_frames - 1) / FPS,
                        turns=turns, meta=self._meta(mode))

    def _mixed(self, events, n_frames, duration):
        """Build a long stream of narration, assist and quiet segments (see ``dialogue``)."""
        rng = random.Random(f'mixed-{self.seed}-{duration}')
        event_frames = {e.frame for e in events}
        turns, busy = [], set(event_frames) | {0}
        lo = 0
        while lo < n_frames:
            hi = min(n_frames, lo + rng.randint(*SEGMENT_FRAMES))
            kind = rng.choices([k for k, _ in SEGMENTS], [w for _, w in SEGMENTS])[0]
            seg = [e for e in events if lo < e.frame < hi]
            if kind == 'narration':
                start = lo if lo == 0 else min(
                    [f for f in range(lo, min(hi, lo + 6)) if f not in event_frames] or [lo])
                turns += [Turn('user', start / FPS, rng.choice(NARRATE)),
                          Turn('assistant', start / FPS, NARRATE_ACK)]
                busy.add(start)
                free = [f for f in range(max(start + 1, hi - 6), hi) if f not in busy]
                stop = free[0] if hi < n_frames and free else None  # 'stop narrating' here
                turns += [Turn('assistant', e.frame / FPS, e.text) for e in seg
                          if start < e.frame and (stop is None or e.frame < stop)]
                if stop is not None:
                    busy.add(stop)
                    turns += [Turn('user', stop / FPS, rng.choice(STOP_NARRATING)),
                              Turn('assistant', stop / FPS, STOP_ACK)]
                per_question = 40
            elif kind == 'assist':
                turns += self._requests(rng, seg, n_frames, busy, lo=max(1, lo))
                per_question = 30
            else:
                per_question = 0
            if per_question:
                free = [f for f in range(max(1, lo), hi) if f not in busy]
                n_q = rng.randint(0, max(1, (hi - lo) // per_question))
                for f in sorted(rng.sample(free, min(n_q, len(free)))):
                    busy.add(f)
                    q, a = self.question(rng, f / FPS)
                    turns += [Turn('user', f / FPS, q), Turn('assistant', f / FPS, a)]
            lo = hi
        turns.sort(key=lambda tr: tr.time)
        return Dialogue(video=f'synthetic:{self.seed}', fps=FPS, duration=(n_frames - 1) / FPS,
                        turns=turns, meta=self._meta('mixed'))

    def _meta(self, mode):
        meta = {'source': 'synthetic', 'seed': self.seed, 'mode': mode}
        world = {}
        if self.size != 224:
            world['size'] = self.size
        if self.noise != 6.0:
            world['noise'] = self.noise
        if world:
            meta['world'] = world
        return meta

    def _requests(self, rng, events, n_frames, busy, lo=1):
        """Draw "tell me when" requests, answered at the first matching event."""
        turns = []
        candidates = [e for e in events if e.kind in ('appear', 'disappear', 'recolour', 'move')
                      or e.text.endswith('complete.')]
        rng.shuffle(candidates)
        for e in candidates[:rng.randint(1, 3)]:
            request, answer = self._request_text(e)
            ok = [f for f in range(max(lo, e.frame - 16), e.frame - 1)
                  if f not in busy and self._pending(e, f, events)]
            if not ok:
                continue
            f = rng.choice(ok)
            busy.update({f, e.frame})
            ack = 'OK, I will tell you when ' + request[len('Tell me when '):-1] + '.'
            turns += [Turn('user', f / FPS, request), Turn('assistant', f / FPS, ack),
                      Turn('assistant', e.frame / FPS, answer)]
        return turns

    @staticmethod
    def _request_text(e):
        if e.kind == 'appear':
            return (f'Tell me when a {e.subject} appears.',
                    e.text.replace('appears', 'has appeared'))
        if e.kind == 'disappear':
            return (f'Tell me when the {e.subject} disappears.',
                    f'The {e.subject} has disappeared.')
        if e.kind == 'recolour':
            return (f'Tell me when the {e.subject} changes colour.',
                    e.text.replace(' turns ', ' has turned '))
        if e.kind == 'move':
            return f'Tell me when the {e.subject} moves.', e.text.replace(' moves ', ' has moved ')
        return 'Tell me when the tower is complete.', 'The tower is complete now.'

    def _pending(self, e, f, events):
        """Check that a request made at frame f is first answered by event e."""
        s = self.state_at(f / FPS)
        if e.kind == 'appear':
            pre = e.subject not in s.objects
        elif e.kind in ('disappear', 'recolour', 'move'):
            pre = e.subject in s.objects
        else:
            pre = len(s.tower) < s.tower_target
        between = [x for x in events if f < x.frame < e.frame]
        if e.kind == 'stack':
            clash = any(x.text.endswith('complete.') for x in between)
        else:
            clash = any(x.kind == e.kind and x.subject == e.subject for x in between)
        return pre and not clash

    def question(self, rng, t):
        """Draw a question about the state at time t and its exact answer."""
        s = self.state_at(t)
        kinds = ['count', 'exists', 'tower', 'next']
        if s.objects:
            kinds += ['colour', 'colour', 'where']
        kind = rng.choice(kinds)
        if kind in ('colour', 'where'):
            shape = rng.choice(sorted(s.objects))
            q = f'What colour is the {shape}?' if kind == 'colour' else f'Where is the {shape}?'
        elif kind == 'exists':
            q = f'Is there a {rng.choice(SHAPES)}?'
        else:
            q = QUESTIONS[kind]
        return q, self.answer(q, t)

    def answer(self, question, t):
        """Return the exact answer to one of the world's questions at time t (None if unknown)."""
        if question in NARRATE:
            return NARRATE_ACK
        if question in STOP_NARRATING:
            return STOP_ACK
        s = self.state_at(t)
        shape = next((w for w in SHAPES if w in question), None)
        if question.startswith('What colour is the') and shape in s.objects:
            return f'The {shape} is {s.objects[shape][0]}.'
        if question.startswith('Where is the') and shape in s.objects:
            return f'The {shape} is at the {s.objects[shape][1]}.'
        if question.startswith('Is there a') and shape:
            if shape in s.objects:
                return f'Yes, the {shape} is {s.objects[shape][0]}.'
            return f'No, there is no {shape}.'
        if question == QUESTIONS['count']:
            k = len(s.objects)
            return 'There is one shape.' if k == 1 else f'There are {NUMBERS[k]} shapes.'
        if question == QUESTIONS['tower']:
            k = len(s.tower)
            noun = 'block' if k == 1 else 'blocks'
            return f'There {"is" if k == 1 else "are"} {NUMBERS[k]} {noun} in the tower.'
        if question == QUESTIONS['next']:
            if len(s.tower) < s.tower_target:
                return f'Next, stack block {len(s.tower) + 1} of {s.tower_target}.'
            return 'The tower is complete; next, take it down.'
        return None
