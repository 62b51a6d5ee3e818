"""Where does the LLM lose the facts? Teacher-forced token accuracy per slot.

``python -m live_ros.analysis.slots --model DIR --data synthetic:test:10:30:auto:100``

One teacher-forced pass per held-out dialogue; every learned response token is put in the
slot its word fills in the synthetic world's sentences (colour, shape, action, number, other)
and counted right when the argmax at the position before it is that token. Spontaneous
responses (the model chose the time) and answers to user turns are counted apart. Frame
tokens carry the facts (live_ros.analysis.probe); this says which facts the LLM reads wrong.
"""

import argparse
import json
import sys
from collections import defaultdict

import torch

from live_ros.analysis import analysis_run
from live_ros.data.synthetic import CELLS, COLOURS, NUMBERS, SHAPES

SLOTS = {
    'colour': set(COLOURS),
    'shape': set(SHAPES) | {'tower', 'block', 'blocks', 'shape', 'shapes'},
    'action': {'appears', 'disappears', 'turns', 'moves', 'stacked', 'taken', 'complete',
               'appeared', 'disappeared', 'turned', 'moved'},
    'number': set(NUMBERS) | {str(i) for i in range(10)},
    'position': {w for c in CELLS for w in c.split()},
}


def slot_of(word):
    """Return the slot a (lower-cased, stripped) word fills, or 'other'."""
    for slot, words in SLOTS.items():
        if word in words:
            return slot
    return 'other'


@torch.no_grad()
def slot_accuracy(model, dialogues):
    """{kind: {slot: [right, total]}} over the dialogues' learned response tokens."""
    from live_ros.data.dataset import StreamDataset
    from live_ros.evaluation.teacher_forced import _logits
    ds = StreamDataset(dialogues, model)
    counts = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for i in range(len(ds)):
        ex = ds.examples[i]
        pred = _logits(model, ex.input_ids, ds.frames(i)).argmax(-1)
        for turn in ex.turns:
            kind = 'spontaneous' if turn.spontaneous else 'answer'
            for p in turn.text:
                target = ex.labels[p]
                word = model.tokenizer.decode([target]).strip().lower().strip('.,;:')
                slot = slot_of(word)
                c = counts[kind][slot]
                c[0] += int(pred[p] == target)
                c[1] += 1
    return {k: {s: {'accuracy': round(r / n, 3), 'tokens': n} for s, (r, n) in v.items()}
            for k, v in counts.items()}


def main(argv=None):
    p = argparse.ArgumentParser(prog='live-slots', description=__doc__.split('\n')[0])
    p.add_argument('--model', default=None, help='model dir (default: the embedded default)')
    p.add_argument('--data', nargs='+', default=['synthetic:test:10:30:auto:100'],
                   help='held-out dialogue specs')
    a = analysis_run(p, argv)
    from live_ros.model.config import resolve_model_path
    from live_ros.data.dataset import load_data
    from live_ros.model.live_model import load_live_model
    model = load_live_model(resolve_model_path(a.model), device='cpu')
    table = slot_accuracy(model, load_data(a.data))
    for kind, slots in sorted(table.items()):
        for slot, v in sorted(slots.items()):
            print(f'{kind:12s} {slot:9s} {v["accuracy"]:6.3f}  ({v["tokens"]} tokens)')
    if a.out:
        with open(a.out, 'w') as f:
            json.dump(table, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
