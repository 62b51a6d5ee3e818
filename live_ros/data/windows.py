"""Training windows that show the model what the streaming engine shows it.

An always-on session never holds a whole long stream: its KV cache is bounded and, near the
bound, rebuilt from the system prompt, a few older turns as plain text and the most recent
frames (live_ros/streaming/context.py). A model trained only on short streams from t = 0 sees
two new things there: cache positions it was never trained at, and the rebuilt layout (turns
without their frames). This module cuts a long dialogue into the windows the engine would
hold, in the same layout, so training covers both.

The cut is the engine's own, not a copy of it: the dialogue is replayed through the template
encoder with the session's room checks (a frame: its tokens and the interval token; a turn:
the question, the template's turn tokens and ``max_new_tokens``), and where the session would
rebuild, ``ContextPolicy.plan`` over a ``ContextHistory`` of frame indices says what the new
cache holds. A window then starts at the plan's first frame, with the older turns it replays
as text before it; those are context only (``learn=False``): without their frames they cannot
be predicted.
"""

from live_ros.data.format import Dialogue, stream_events, Turn
from live_ros.streaming.context import ContextHistory, ContextPolicy
from live_ros.streaming.session import TURN_TEMPLATE_TOKENS


def context_windows(dialogue, template, bound, keep_frames, keep_turns, max_new_tokens=None):
    """Cut ``dialogue`` into the windows a session with this context bound would hold.

    ``max_new_tokens``: the room the session keeps for an answer (default: the answer's own
    length). A dialogue that fits the bound is returned as it is (a one-element list).
    """
    system = dialogue.system if dialogue.system is not None else template.system_prompt
    policy = ContextPolicy(bound)
    history = ContextHistory(keep_frames, keep_turns)
    enc = template.encoder()
    enc.system(system)
    after = [[] for _ in range(dialogue.num_frames)]   # frame k -> the turns that follow it
    head = []                                            # turns before the stream
    cuts = []     # (frame where the old window ends, new window's first frame, replayed turns)
    last = -1     # the newest frame fed

    def make_room(need, ending):
        nonlocal enc
        if policy.fits(enc.fed + enc.unfed, need):
            return
        enc, frames = policy.plan(template, system, history)
        enc.take()
        replay = []
        for kind, value in history.events():
            if kind == 'frame':
                break
            replay.append(Turn(kind, -1.0, value))
        cuts.append((ending, frames[0] if frames else ending, replay))

    events = list(stream_events(dialogue))
    i = 0
    while i < len(events):
        kind, value = events[i]
        i += 1
        if kind == 'frame':
            make_room(template.tokens_per_frame + 1, value)
            enc.frame()
            enc.take()
            history.add_frame(value)
            last = value
            continue
        (head if last < 0 else after[last]).append(value)
        answer = None
        if value.role == 'user' and i < len(events) and events[i][0] == 'turn' \
                and events[i][1].role == 'assistant':   # the session answers at once
            answer = events[i][1]
            i += 1
            (head if last < 0 else after[last]).append(answer)
        reply = answer or (value if value.role == 'assistant' else None)
        question = value if value.role == 'user' else None
        # the reply as the session generates it: its words, then the end token
        generated = (template.tokenize(' ' + reply.text) + [template.eos_token_id]
                     if reply else [])
        room = max_new_tokens or len(generated)
        asked = len(template.tokenize(question.text)) if question else 0
        make_room(asked + TURN_TEMPLATE_TOKENS + room, max(last, 0))
        if question is not None:
            enc.user(question.text)
            history.add_turn('user', question.text)
        if reply is not None:
            enc.assistant_prefix()
            enc.take()
            enc.assistant_generated(generated)
            history.add_turn('assistant', reply.text)
    if not cuts:
        return [dialogue]
    windows, start, replayed = [], 0, head
    for ending, first, replay in cuts:
        if ending > start:
            windows.append(_window(dialogue, start, ending, replayed, after))
        start, replayed = first, replay
    windows.append(_window(dialogue, start, dialogue.num_frames, replayed, after))
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
