"""COIN benchmarks as the reference scores them: question, stream, then plain generation.

data/coin.py builds and scores the questions; the answer comes after the segment's stream.
"""

import time

import torch

from live_ros.data.frames import iter_dialogue_frames


@torch.no_grad()
def generate_after_stream(model, dialogue, max_new_tokens=512):
    """Answer the question asked before a stream by plain greedy generation after its end.

    The reference's COIN evaluation: question, stream and ``Assistant:`` in one prefill, then
    decoding; the model is never asked to decide on frames on the way.
    """
    from live_ros.streaming.session import StreamingSession
    session = StreamingSession(model, max_new_tokens=max_new_tokens, context_mode='reference',
                               engine='eager')
    enc = model.template.encoder()
    enc.system(session.system_prompt)
    for turn in dialogue.turns:
        if turn.role == 'user' and turn.time < 0:
            enc.user(turn.text)
    frames = []
    for chunk in iter_dialogue_frames(dialogue):
        for embeds in model.encode_images(chunk):
            enc.frame()
            frames.append(embeds)
    session.load_context(enc, frames)
    return session.respond(dialogue.duration, time.perf_counter()).text


def coin_eval(model, anno, video_root, tasks, split='test', limit=None):
    """COIN benchmark accuracy per task (data/coin.py), answers by plain generation."""
    from live_ros.data.coin import coin_accuracy, coin_benchmark
    out = {}
    for task in tasks:
        dialogues, categories = coin_benchmark(anno, task, video_root, split=split)
        dialogues = dialogues[:limit] if limit else dialogues
        answers = [generate_after_stream(model, d) for d in dialogues]
        out[task] = {'accuracy': coin_accuracy(answers, dialogues, categories),
                     'questions': len(dialogues), 'answers': answers[:20]}
    return out
