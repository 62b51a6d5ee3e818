"""Per-frame and interleaved baselines: training, the prompted session, metrics."""

import pytest
import torch

from live_ros.data.collator import build_example, build_per_frame_example, IGNORE
from live_ros.data.format import Dialogue
from live_ros.data.synthetic import SyntheticWorld
from live_ros.evaluation.teacher_forced import teacher_forced
from live_ros.streaming.baselines import make_session, PromptedSession
from live_ros.cli.train import load_config, train
from live_ros.testing import tiny_models


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('base')
    model, cfg = tiny_models.build_tiny_live_model(root)
    return root, model.eval()


def _force_eos(model):
    """Make the LLM always predict eos (a hook on the base LM's logits)."""
    eos = model.eos_token_id

    def hook(module, args, output):
        output.logits[..., eos] += 1e4
        return output
    return model.base_lm.register_forward_hook(hook)


def test_prompted_loop_feeds_the_per_frame_layout(tiny):
    _, model = tiny
    frames = [SyntheticWorld(5, size=32).render(k / 2) for k in range(4)]
    handle = _force_eos(model)
    try:
        runner = make_session('per_frame', model)
        said = []
        for k, f in enumerate(frames):
            said += runner.push_frame(f, k / 2)
    finally:
        handle.remove()
    assert said == []  # an immediate eos after every frame is silence
    offline = build_per_frame_example(model.template, Dialogue('x', 2.0, 1.5, []))
    assert runner.enc.ids == offline.input_ids
    assert runner.cache_tokens == len(offline.input_ids) - 1  # last eos pending


def test_prompted_loop_answers_queries(tiny):
    _, model = tiny
    runner = PromptedSession(model, max_new_tokens=3)
    runner.ask('What is it?', 0.5)
    out = []
    for k in range(3):
        emb = torch.zeros(model.tokens_per_frame, model.base_lm.config.hidden_size)
        out += runner.push_frame(emb, k / 2)
    answers = [r for r in out if r.query == 'What is it?']
    assert len(answers) == 1 and answers[0].stream_time == 0.5


def test_interleaved_and_per_frame_train_and_score(tiny, tmp_path):
    root, _ = tiny
    llm, vision = tiny_models.save_tiny_backbones(root)
    cfg_path = 'config/train/tiny.yaml'
    for fmt in ('per_frame', 'interleaved'):
        cfg = load_config(cfg_path, [f'model.llm={llm}', f'model.vision={vision}',
                                     f'train.output_dir={tmp_path / fmt}', f'data.format={fmt}',
                                     'train.max_steps=4', 'train.save_steps=100'])
        trainer, final = train(cfg)
        logged = [h['loss'] for h in trainer.state.log_history if 'loss' in h]
        assert logged[-1] < logged[0], fmt
        live = trainer.model.live.eval()
        ds = trainer.train_dataset
        if fmt == 'interleaved':  # no streaming-EOS labels on frames
            ex = ds.examples[0]
            for t in ex.turns:
                assert all(ex.labels[p] == IGNORE for p, _, _ in t.decisions)
        dialogues = [SyntheticWorld(100_000, size=32).dialogue(6.0, mode='narration')]
        (r,) = teacher_forced(live, dialogues, fmt)
        assert r['lm_ppl'] > 1.0 and 0.0 <= r['fluency'] <= 1.0 and r['time_diff'] >= 0.0


def test_per_frame_costs_more_tokens_than_live(tiny):
    _, model = tiny
    d = SyntheticWorld(3).dialogue(10.0)
    live = build_example(model.template, d)
    per_frame = build_per_frame_example(model.template, d)
    assert len(per_frame.input_ids) > len(live.input_ids) + 2 * d.num_frames


def test_per_frame_stand_in_feeds_an_empty_turn_after_silent_frames(tmp_path):
    """live-bench's per-frame stand-in: LIVE decides, silence is the empty per-frame reply."""
    model, _ = tiny_models.build_tiny_live_model(tmp_path)
    silent, speak = tiny_models.steer_frame_decisions(model)
    runner = make_session('per_frame', model, frame_decision=True, max_new_tokens=2)
    said = []
    for k, frame in enumerate([silent, silent, speak, silent]):
        said += runner.push_frame(frame, k / 2)
    assert [r.frame_index for r in said] == [2]
    text = model.tokenizer.decode(runner.enc.ids)
    assert text.count('Assistant:') == 4   # a turn after every frame, spoken or silent
    assert runner.cache_tokens == runner.enc.fed and runner.fed_ids == runner.enc.ids[:-1]
