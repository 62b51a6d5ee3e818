"""Offline annotations -> streaming dialogues, the way the paper builds its training data.

- Ego4D narrations (``{videos: {uid: {narration_pass_1: {narrations: [{timestamp_sec,
  narration_text}]}}}}`` or the same mapping without the ``videos`` level): each narration
  pass becomes one real-time narration stream, built as the reference builds it (subject tags
  kept, one instruction, ceiled times, 1200-frame clip; see ego4d_narration_streams). The
  reference's train / val / test splits are video-uid lists derived from the Ego4D benchmark
  annotations: pass them with ``--video-uids``.
- Step annotations, COIN layout (``{database: {uid: {annotation: [{segment: [s, e], label}],
  class, subset}}}``) and Ego4D GoalStep-like layout (``{videos: [{video_uid,
  goal_description, segments: [{start_time, end_time, step_description}]}]}``): user queries
  at random times from past / current / next step templates, answered at once, then assistant
  turns at every step start and end until the next query.
- COIN benchmarks (step, next, task, procedure, task_procedure): data/coin.py; the
  ``coin-<task>`` kinds of the command line write them as dialogues.
- ``--rewrite-lm``: a local causal LM rewrites template sentences into natural ones, as the
  paper does with Llama-3 (data/rewrite.py).
"""

import json
import math
import os
import random

from live_ros.data.coin import clean_task, load_database
from live_ros.data.format import Dialogue, Turn

EPS = 1e-6
PAST = ('What did I just do?', 'What was my last step?', 'What have I just finished?')
CURRENT = ('What am I doing now?', 'What is the current step?', 'Which step is this?')
NEXT = ('What should I do next?', 'What is the next step?', 'What comes next?')
GUIDE = ('Guide me through this task: tell me about each step.',
         'Please help me with {task}, step by step.')


def ceil_time(t, fps):
    """Time ceiled to the frame grid: the first frame at which the event has been seen."""
    return math.ceil(t * fps - EPS) / fps


# -- Ego4D narrations -----------------------------------------------------------------------
# The reference's one narration instruction: it asks for the tags the narrations keep.
EGO4D_NARRATION_INSTRUCTION = (
    "Please concisely narrate the video in real time. Use the tag 'C' to denote the camera "
    "wearer, and other letter tags, such as 'X', to denote other individuals in the scene.")


def clean_narration(text):
    """'#C C picks a cup' -> 'C picks a cup.': '#' tags go, the subject letters stay."""
    t = str(text)
    for tag in ('#C', '#c', '@c', '#O', '#o', '#Unsure', '#unsure', '#'):
        t = t.replace(tag, '')
    words = (t.strip('.,\n ') + '.').split()
    if not words or words == ['.']:
        return ''
    words[0] = words[0].capitalize()
    return ' '.join(words)


def ego4d_narration_streams(anno, video_root='', fps=2.0, max_frames=1200, video_ext='.mp4',
                            passes=None, video_uids=None):
    """Ego4D narration JSON (dict or path) -> real-time narration dialogues, as the reference.

    Every narration pass of every video (or of ``video_uids``: the split's videos) becomes one
    stream starting at its first narration: the instruction follows the first frame and the
    first narration answers it at once; every later narration follows the frame at its
    ceiled time. Narrations of fewer than two words are dropped, a repeat of the previous
    text is skipped, two narrations ceiled onto one frame keep the later, and the stream is
    clipped at ``max_frames`` by dropping whole later narrations.
    """
    if isinstance(anno, str):
        with open(anno) as f:
            anno = json.load(f)
    videos = anno.get('videos', anno)
    keep = None if video_uids is None else set(video_uids)
    out = []
    for uid in sorted(videos):
        if keep is not None and uid not in keep:
            continue
        entry = videos[uid] or {}
        names = passes or sorted(k for k in entry if k.startswith('narration_pass'))
        for name in names:
            items = []
            for n in (entry.get(name) or {}).get('narrations', []):
                text = clean_narration(n.get('narration_text', ''))
                if len(text.split(' ')) >= 2:
                    items.append((float(n['timestamp_sec']), text))
            items.sort(key=lambda x: x[0])
            d = _narration_stream(uid, name, items, video_root, video_ext, fps, max_frames)
            if d is not None:
                out.append(d)
    return out


def _narration_stream(uid, name, items, video_root, video_ext, fps, max_frames):
    if not items:
        return None
    start = ceil_time(items[0][0], fps)
    turns = [Turn('user', 0.0, EGO4D_NARRATION_INSTRUCTION)]
    last_text, last_time = None, None
    for when, text in items:
        if text == last_text:
            continue
        t = ceil_time(when, fps) - start
        if max_frames is not None and round(t * fps) + 1 > max_frames:
            break
        if last_time is not None and abs(t - last_time) < EPS:
            turns[-1] = Turn('assistant', t, text)
        else:
            turns.append(Turn('assistant', t, text))
        last_text, last_time = text, t
    return Dialogue(video=os.path.join(video_root, uid + video_ext), fps=fps,
                    duration=last_time, turns=turns, start=start,
                    meta={'source': 'ego4d_narration', 'video_uid': uid, 'pass': name})


# -- step annotations -----------------------------------------------------------------------
def step_fragment(text):
    """Step label as a sentence fragment: trimmed, lower-cased first letter, no final dot."""
    t = ' '.join(str(text).split()).strip(' .')
    return t[:1].lower() + t[1:]


def _answer(kind, steps, t):
    """Template answer to a past / current / next step query asked at time t."""
    past = [s for s in steps if s[1] <= t + EPS]
    current = [s for s in steps if s[0] <= t + EPS < s[1]]
    future = [s for s in steps if s[0] > t + EPS]
    if kind == 'past':
        return f'You just finished: {past[-1][2]}.' if past else \
            'You have not finished a step yet.'
    if kind == 'current':
        return f'You are doing: {current[-1][2]}.' if current else 'You are between steps now.'
    return f'Next: {future[0][2]}.' if future else 'That was the last step.'


def steps_to_dialogue(video, steps, task=None, fps=2.0, rng=None, max_queries=3,
                      meta=None, start=0.0):
    """Step list [(start_s, end_s, text)] -> a dialogue with queries and step-boundary turns.

    Queries come at random frames from the past / current / next templates (the first may ask
    for guidance through the whole task) and are answered at once; after each query the
    assistant speaks at every step start ('Now: ...') and end ('Done: ...') until the next
    query. Times are relative to `start`, the stream's start in the video.
    """
    rng = rng or random.Random(0)
    steps = sorted((s - start, e - start, step_fragment(x)) for s, e, x in steps)
    if not steps:
        return None
    end = ceil_time(max(e for _, e, _ in steps), fps)
    n_frames = int(end * fps + EPS) + 1
    n_q = rng.randint(1, max_queries)
    q_frames = sorted(rng.sample(range(0, max(n_frames - 1, 1)), min(n_q, max(n_frames - 1, 1))))
    turns = []
    for j, f in enumerate(q_frames):
        tq = f / fps
        if j == 0 and rng.random() < 0.5:
            q = rng.choice(GUIDE).format(task=task or 'this task')
            a = 'Sure, I will tell you about each step.'
        else:
            kind = rng.choice(('past', 'current', 'next'))
            q = rng.choice({'past': PAST, 'current': CURRENT, 'next': NEXT}[kind])
            a = _answer(kind, steps, tq)
        turns += [Turn('user', tq, q), Turn('assistant', tq, a)]
        t_next = q_frames[j + 1] / fps if j + 1 < len(q_frames) else math.inf
        spoken = {f}
        for s, e, text in steps:
            for t, say in ((s, f'Now: {text}.'), (e, f'Done: {text}.')):
                tb = ceil_time(t, fps)
                fb = int(round(tb * fps))
                if tq < tb < t_next - EPS and fb < n_frames:
                    if fb in spoken and turns[-1].role == 'assistant' and \
                            abs(turns[-1].time - tb) < EPS and turns[-1].time > tq:
                        turns[-1] = Turn('assistant', tb, turns[-1].text + ' ' + say)
                    elif fb not in spoken:
                        turns.append(Turn('assistant', tb, say))
                        spoken.add(fb)
    turns.sort(key=lambda x: x.time)
    m = {'task': task} if task else {}
    m.update(meta or {})
    return Dialogue(video=video, fps=fps, duration=end, turns=turns, meta=m, start=start)


def coin_dialogues(anno, video_root='', fps=2.0, split=None, seed=0, video_ext='.mp4'):
    """COIN JSON (dict or path) -> step dialogues (one per video of the split)."""
    db = load_database(anno)
    rng = random.Random(seed)
    out = []
    for uid in sorted(db):
        v = db[uid]
        if split and split not in str(v.get('subset', '')).lower():
            continue
        steps = [(a['segment'][0], a['segment'][1], a['label']) for a in v.get('annotation', [])]
        task = clean_task(v.get('class', '')) or None
        d = steps_to_dialogue(os.path.join(video_root, uid + video_ext), steps, task, fps, rng,
                              meta={'source': 'coin', 'video_uid': uid})
        if d:
            out.append(d)
    return out


def goalstep_dialogues(anno, video_root='', fps=2.0, seed=0, video_ext='.mp4'):
    """Ego4D GoalStep-like JSON (dict or path) -> step dialogues (one per video)."""
    if isinstance(anno, str):
        with open(anno) as f:
            anno = json.load(f)
    rng = random.Random(seed)
    out = []
    for v in anno['videos']:
        steps = [(s['start_time'], s['end_time'], s['step_description'])
                 for s in v.get('segments', [])]
        d = steps_to_dialogue(os.path.join(video_root, v['video_uid'] + video_ext), steps,
                              v.get('goal_description'), fps, rng,
                              meta={'source': 'goalstep', 'video_uid': v['video_uid']})
        if d:
            out.append(d)
    return out
