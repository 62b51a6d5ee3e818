"""The facts a sentence about the synthetic world states, for content metrics.

A response is right when it states the same facts as the truth, whatever its wording: which
objects, colours, action, position, numbers (a count, a step "k of n"), and whether it agrees
or declines. ``facts`` normalises a sentence to that set, so "A red circle appears." and "A
red circle has appeared." agree, and "The blue circle appears." does not. Timing metrics
(TimeDiff, recall) cannot see a wrong colour; these can.
"""

import re

from live_ros.data.synthetic import CELLS, COLOURS, NUMBERS, SHAPES

ACTIONS = {
    'appear': 'appear', 'appears': 'appear', 'appeared': 'appear',
    'disappear': 'disappear', 'disappears': 'disappear', 'disappeared': 'disappear',
    'turns': 'recolour', 'turned': 'recolour', 'changes': 'recolour',
    'move': 'move', 'moves': 'move', 'moved': 'move',
    'stack': 'stack', 'stacked': 'stack',
    'taken': 'clear', 'take': 'clear',
    'complete': 'complete',
    'quiet': 'quiet',
    'narrate': 'narrate',
}
NUMBER_WORDS = {w: i for i, w in enumerate(NUMBERS)}
COUNTED = set(SHAPES) | {'shape', 'shapes', 'block', 'blocks'}
_CELL = re.compile('|'.join(sorted(CELLS, key=len, reverse=True)))


def facts(text):
    """Return the facts of a sentence as a frozenset of (slot, value) pairs."""
    text = text.lower()
    words = re.findall(r'[a-z]+|\d+', text)
    out = set()
    if words and words[0] in ('yes', 'no', 'ok'):
        out.add(('reply', words[0]))
    for i, w in enumerate(words):
        if w in COLOURS:
            out.add(('colour', w))
        elif w in SHAPES:
            out.add(('object', w))
        elif w in ('tower', 'block', 'blocks'):
            out.add(('object', 'tower'))
        elif w in ('shape', 'shapes'):
            out.add(('object', 'shapes'))
        elif w in ACTIONS:
            out.add(('action', ACTIONS[w]))
        if w.isdigit():
            out.add(('number', int(w)))
        elif w in NUMBER_WORDS and (w != 'no' or i + 1 < len(words) and words[i + 1] in COUNTED):
            out.add(('number', NUMBER_WORDS[w]))
    for cell in _CELL.findall(text):
        out.add(('position', cell))
    return frozenset(out)


def same_facts(a, b):
    """Tell whether two sentences state the same facts."""
    return facts(a) == facts(b)


class WorldTruth:
    """Mark what a model said about a synthetic world as right or wrong, line by line.

    For a narrated stream (the demo asks for narration at the first frame) a spontaneous
    response is right when an event within ``window`` seconds states the same facts; an answer
    is right when it states the facts of the world's own answer at that time.
    """

    def __init__(self, world, window=2.0):
        self.world = world
        self.window = float(window)

    def spontaneous(self, text, t):
        """Return (right, the true sentence nearest in time or None) for a response at t."""
        from live_ros.data.synthetic import FPS
        events = self.world.events_until(int((t + self.window) * FPS) + 1)
        near = sorted((abs(e.frame / FPS - t), e.text) for e in events
                      if abs(e.frame / FPS - t) <= self.window)
        right = any(same_facts(text, true) for _, true in near)
        if right:
            return True, next(true for _, true in near if same_facts(text, true))
        return False, near[0][1] if near else None

    def answer(self, question, text, t):
        """Return (right, the true answer or None) for an answer given at time t."""
        true = self.world.answer(question, t)
        return true is not None and same_facts(text, true), true
