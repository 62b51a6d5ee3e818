"""Training windows that show the model what the streaming engine shows it.

An always-on session never holds a whole long stream: its KV cache is bounded and, near the
bound, rebuilt from the system prompt, a few older turns as plain text and the most recent
frames (live_ros/streaming/context.py). A model trained only on short streams from t = 0 sees
two new things there: cache positions it was never trained at, and the rebuilt layout (turns
without their frames). This module cuts a long dialogue into the windows the engine would
hold, in the same layout, so training covers both:

- window 0 starts at frame 0 and grows until the cache bound would be reached;
- each later window starts ``keep_frames`` frames before the previous one ended (the frames a
  rebuild keeps) and begins with up to ``keep_turns`` older turns as text; those turns are
  context only (``learn=False``): without their frames they cannot be predicted.

Token counts are the template's own (frame = tokens per frame + the interval token; a turn =
its text plus the role prefix and eos), so window lengths follow the engine's bound.
"""

from live_ros.data.format import Dialogue, Turn, stream_events

# Template tokens around a turn's text ('\nUser: ' / '\nAssistant: ' ... eos, and ']' / '\n['
# when it interrupts a stream), counted generously so windows stay under the bound.
TURN_OVERHEAD = 8


def context_windows(dialogue, template, bound, keep_frames, keep_turns):
    """Cut ``dialogue`` into the windows a session with this context bound would hold.

    A dialogue that fits the bound is returned as it is (a one-element list).
    """
    per_frame = template.tokens_per_frame + 1
    system = dialogue.system if dialogue.system is not None else template.system_prompt
    base = len(template.tokenize(system)) + 2
    cost = {}

    def turn_cost(turn):
        if id(turn) not in cost:
            cost[id(turn)] = len(template.tokenize(turn.text)) + TURN_OVERHEAD
        return cost[id(turn)]

    # frame k -> turns that follow it (turns before the stream belong to window 0 only)
    events = list(stream_events(dialogue))
    after = [[] for _ in range(dialogue.num_frames)]
    head = []
    k = -1
    for kind, value in events:
        if kind == 'frame':
            k = value
        elif k < 0:
            head.append(value)
        else:
            after[k].append(value)
    windows = []
    start, history = 0, head
    while start < dialogue.num_frames:
        used = base + sum(turn_cost(t) for t in history)
        end = start
        while end < dialogue.num_frames:
            need = per_frame + sum(turn_cost(t) for t in after[end])
            if used + need > bound and end > start:
                break
            used += need
            end += 1
        windows.append(_window(dialogue, start, end, history, after))
        if end >= dialogue.num_frames:
            break
        start = max(start + 1, end - keep_frames)
        older = [t for f in range(0, start) for t in after[f]]
        history = (head + older)[-keep_turns:] if keep_turns else []
    return windows


def _window(dialogue, start, end, history, after):
    """Dialogue of frames [start, end) with ``history`` replayed as text before them."""
    if start == 0 and end == dialogue.num_frames:
        return dialogue
    fps = dialogue.fps
    offset = start / fps
    turns = [Turn(t.role, -1.0, t.text, learn=(start == 0 and t.learn)) for t in history]
    for f in range(start, end):
        for t in after[f]:
            time = max(0.0, t.time - offset)
            turns.append(Turn(t.role, time, t.text, t.learn))
    meta = dict(dialogue.meta, window=[start, end], parent_frames=dialogue.num_frames)
    return Dialogue(video=dialogue.video, fps=fps, duration=(end - 1 - start) / fps,
                    turns=turns, system=dialogue.system, meta=meta,
                    start=dialogue.start + offset)
