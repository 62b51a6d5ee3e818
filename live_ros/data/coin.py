"""COIN benchmarks as the paper scores them: step, next, task, procedure, task-procedure.

Each question is a short dialogue: the user asks first, then one segment of the video streams
(``User: q``, ``[<v>...]``, ``Assistant:`` on their lines), and the model answers by plain
generation after the last frame (evaluation/coin_eval.generate_after_stream), not through the live
session. The reference's rules, kept here because they change the numbers:

- splits by ``subset`` ('train' matches 'training', 'test' matches 'testing'); the answer
  categories are the tasks and the steps of that split only;
- step labels are used as written except for two reference fixes (STEP_FIXES); task names
  split CamelCase into lower-case words with a few acronyms restored (ACRONYMS);
- a segment streams the frames from ceil(start) to ceil(end) on the fps grid, both included;
- 'step' asks for the step being shown, 'next' (and 'procedure' with one step left) for the
  following one, 'procedure' for up to 5 following ones as a numbered list, 'task' for the
  activity over the whole annotated span, 'task_procedure' like 'procedure' with the task
  named in the question;
- an answer is right when, lower-cased without its final dot, it equals the label or its
  nearest category by edit distance is the label; a procedure answer is split into lines,
  each line's text after its last '. ' is scored against the label at the same position, and
  only the pairs that exist count (zip of predicted lines and labels).
"""

import json
import math
import os

from live_ros.data.format import Dialogue, Turn

EPS = 1e-6
MAX_PROCEDURE_STEPS = 5
TASKS = ('step', 'next', 'task', 'procedure', 'task_procedure')
STEP_FIXES = {
    'process (crop, fold) paper': 'crop and fold paper',
    'try to press gun head, spray residual old grease':
        'try to press gun head to spray residual old grease',
}
ACRONYMS = ((' t v', ' TV'), (' c d', ' CD'), ('s i m', 'SIM'), ('n b a', 'NBA'),
            ('s s d', 'SSD'), ('r j45', 'RJ45'))
CONCISE = 'Format your answer concisely. No extra text output.'
LISTED = ('Format your answer concisely, listing each action on a new line with a number '
          'prefix. No extra text output.')


def clean_step(label):
    """Return a step label as the benchmark uses it (two known label fixes, nothing else)."""
    return STEP_FIXES.get(label, label)


def clean_task(name):
    """Split a CamelCase class into words: PutOnHair -> put on hair, acronyms kept."""
    words = ''.join(' ' + c.lower() if c.isupper() else c for c in name)
    for spelled, acronym in ACRONYMS:
        words = words.replace(spelled, acronym)
    return words.strip()


def question(task, n_steps=1, activity=None):
    """Return the words the benchmark asks with (grammar as in the paper: 'is the next 3')."""
    if task == 'step':
        return f'What is the action in the video? {CONCISE}'
    if task == 'task':
        return f'What is the overall activity in the video? {CONCISE}'
    prefix = f'To {activity}, what' if task == 'task_procedure' else 'What'
    if n_steps == 1:
        return f'{prefix} is the next action for the video? {CONCISE}'
    return f'{prefix} is the next {n_steps} actions for the video? {LISTED}'


def answer_text(labels):
    """Write the reference answer: 'Label.' or a numbered list of them."""
    if len(labels) == 1:
        return labels[0].capitalize() + '.'
    return '\n'.join(f'{i + 1}. {label.capitalize()}.' for i, label in enumerate(labels))


def load_database(anno):
    """COIN JSON (a path or the loaded dict) -> its ``database`` mapping."""
    if isinstance(anno, str):
        with open(anno) as f:
            anno = json.load(f)
    return anno.get('database', anno)


def _grid(t, fps, duration):
    """Ceil a time to the frame grid, clipped to the video."""
    t = math.ceil(t * fps - EPS) / fps
    return min(max(t, 0.0), duration) if duration is not None else max(t, 0.0)


def coin_benchmark(anno, task, video_root='', fps=2.0, split='test', video_ext='.mp4',
                   durations=None):
    """Build one benchmark: (dialogues, categories).

    ``durations`` maps video uids to their length in seconds; videos not in it are left out
    (the reference scores only videos it has). None reads each ``<video_root>/<uid><ext>``
    with OpenCV and leaves out the missing ones. Each dialogue holds the question at time -1
    (before the stream), the reference answer at the end, and ``meta['labels']``.
    """
    if task not in TASKS:
        raise ValueError(f'unknown COIN task {task!r}; expected one of {", ".join(TASKS)}')
    db = load_database(anno)
    videos = []
    for uid in sorted(db):
        entry = db[uid]
        if split and split not in str(entry.get('subset', '')).lower():
            continue
        path = os.path.join(video_root, uid + video_ext)
        duration = _duration(uid, path, durations)
        if duration is None:
            continue
        steps = [(a['segment'][0], a['segment'][1], clean_step(a['label']))
                 for a in entry.get('annotation', [])]
        videos.append((uid, path, duration, clean_task(entry.get('class', '')), entry, steps))
    categories = sorted({v[3].lower() for v in videos} if task == 'task' else
                        {s[2].lower() for v in videos for s in v[5]})
    out = []
    for uid, path, duration, activity, entry, steps in videos:
        for start, end, labels, query in _questions(task, activity, entry, steps):
            s = _grid(start, fps, duration)
            e = _grid(end, fps, duration)
            out.append(Dialogue(
                video=path, fps=fps, duration=max(e - s, 0.0), start=s,
                turns=[Turn('user', -1.0, query),
                       Turn('assistant', max(e - s, 0.0), answer_text(labels))],
                meta={'source': f'coin_{task}', 'video_uid': uid,
                      'labels': [label.lower() for label in labels]}))
    return out, categories


def _questions(task, activity, entry, steps):
    """(start, end, labels, question) of every question a video gives."""
    if task == 'task':
        if 'start' in entry and 'end' in entry:
            yield entry['start'], entry['end'], [activity], question('task')
        elif steps:
            yield steps[0][0], max(e for _, e, _ in steps), [activity], question('task')
        return
    if task == 'step':
        for start, end, label in steps:
            yield start, end, [label], question('step')
        return
    n_max = 1 if task == 'next' else MAX_PROCEDURE_STEPS
    for i in range(len(steps) - 1):
        labels = [label for _, _, label in steps[i + 1:i + 1 + n_max]]
        kind = 'task_procedure' if task == 'task_procedure' else 'next'
        yield steps[i][0], steps[i][1], labels, question(kind, len(labels), activity)


def _duration(uid, path, durations):
    if durations is not None:
        return durations.get(uid)
    if not os.path.isfile(path):
        return None
    from live_ros.data.video import video_info
    return video_info(path)[2]


def levenshtein(a, b):
    """Edit distance (insert / delete / substitute)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def nearest_category(text, categories):
    """Return the category at the smallest edit distance (ties: alphabetically first)."""
    return min((levenshtein(text, c), c) for c in categories)[1]


def _right(prediction, label, categories):
    return prediction == label or nearest_category(prediction, categories) == label


def coin_accuracy(predictions, dialogues, categories):
    """Accuracy of generated answers (text) over one benchmark's dialogues, in [0, 1]."""
    correct = total = 0
    for text, d in zip(predictions, dialogues):
        labels = d.meta['labels']
        if len(labels) == 1 and not d.meta['source'].endswith('procedure'):
            correct += _right(text.lower().rstrip('.'), labels[0], categories)
            total += 1
            continue
        for line, label in zip(text.split('\n'), labels):
            correct += _right(line.split('. ')[-1], label, categories)
            total += 1
    return correct / total if total else 0.0
