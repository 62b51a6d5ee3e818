"""live-train on a tiny model: loss, checkpoints, resume, reload, feature cache.

The loss goes down, checkpoints resume to the same weights, the saved directory reloads into
the streaming engine with identical logits, and cached features match the tower.
"""

import os
import shutil

import pytest
import torch

from live_ros.data.collator import StreamCollator
from live_ros.data.dataset import StreamDataset, encode_stream, load_data
from live_ros.data.frames import dialogue_frames
from live_ros.model.live_model import load_live_model
from live_ros.streaming.session import StreamingSession
from live_ros.cli.train import LiveTrainModule, build_model, load_config, main, train

from live_ros.testing import tiny_models  # noqa: E402
CONFIG = os.path.join(os.path.dirname(__file__), '..', 'config', 'train', 'tiny.yaml')


@pytest.fixture(scope='module')
def backbones(tmp_path_factory):
    return tiny_models.save_tiny_backbones(tmp_path_factory.mktemp('tiny'))


def _cfg(backbones, out, *extra):
    llm, vision = backbones
    return load_config(CONFIG, [f'model.llm={llm}', f'model.vision={vision}',
                                f'train.output_dir={out}', *extra])


@torch.no_grad()
def _loss(live, cfg):
    ds = StreamDataset(load_data(cfg['data']['train']), live,
                       max_frames=cfg['data']['max_frames'])
    batch = StreamCollator(live.eos_token_id)([ds[i] for i in range(len(ds))])
    return float(LiveTrainModule(live.eval())(**batch)['loss'])


@pytest.fixture(scope='module')
def trained(backbones, tmp_path_factory):
    out = tmp_path_factory.mktemp('run')
    cfg = _cfg(backbones, out)
    trainer, final = train(cfg)
    return cfg, trainer, final


def test_training_lowers_the_streaming_loss(trained):
    cfg, trainer, final = trained
    logged = [h['loss'] for h in trainer.state.log_history if 'loss' in h]
    assert len(logged) >= 3 and logged[-1] < logged[0]
    before = _loss(build_model(cfg['model'], device='cpu'), cfg)  # same seed, untrained
    after = _loss(load_live_model(final), cfg)
    assert after < before - 0.1, (before, after)


def test_saves_only_what_was_trained(trained):
    _, trainer, final = trained
    names = sorted(os.listdir(final))
    assert 'live_config.json' in names and 'adapter' in names
    assert os.path.isfile(os.path.join(final, 'adapter', 'adapter_model.safetensors'))
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(final) for f in fs)
    llm_bytes = sum(p.numel() * 4 for p in trainer.model.live.base_lm.parameters())
    assert total < llm_bytes / 2  # no backbone copy
    assert os.path.isdir(os.path.join(trainer.args.output_dir, 'checkpoint-8'))
    assert any(f.startswith('events.out.tfevents') for _, _, fs in
               os.walk(trainer.args.output_dir) for f in fs)


def test_reloaded_model_streams_with_identical_logits(trained):
    _, trainer, final = trained
    live = trainer.model.live.eval()
    loaded = load_live_model(final)
    frames = dialogue_frames(load_data('synthetic:val:1:3')[0])
    a, b = StreamingSession(live), StreamingSession(loaded)
    for k, f in enumerate(frames):
        ea, eb = live.encode_images([f])[0], loaded.encode_images([f])[0]
        assert torch.equal(ea, eb)
        a.push_frame(ea, k / 2)
        b.push_frame(eb, k / 2)
        assert torch.allclose(a.last_logits, b.last_logits, atol=1e-5)
    assert a.fed_ids == b.fed_ids


def test_resume_continues_the_same_run(backbones, tmp_path, trained):
    _, full, _ = trained
    shutil.copytree(os.path.join(full.args.output_dir, 'checkpoint-4'), tmp_path / 'checkpoint-4')
    rc = main(['--config', CONFIG, f'model.llm={backbones[0]}', f'model.vision={backbones[1]}',
               f'train.output_dir={tmp_path}', '--resume'])
    assert rc == 0
    resumed = load_live_model(str(tmp_path / 'final'))
    ref = full.model.live
    trained_names = [n for n, p in ref.lm.named_parameters() if p.requires_grad]
    assert trained_names
    mine = dict(resumed.lm.named_parameters())
    for n, p in ref.lm.named_parameters():
        if p.requires_grad:  # LoRA and the trained connector copy
            assert torch.allclose(p, mine[n], atol=1e-5), n


def test_feature_cache_holds_the_tower_output(backbones, tmp_path):
    cfg = _cfg(backbones, tmp_path / 'run', f'data.feature_cache={tmp_path / "feats"}',
               'train.max_steps=2', 'data.format=per_frame')
    trainer, final = train(cfg)
    files = os.listdir(tmp_path / 'feats')
    assert len(files) == 5  # 4 train + 1 eval streams, encoded once
    ds = trainer.train_dataset
    live = trainer.model.live
    d = ds.dialogues[0]
    expected = encode_stream(live, dialogue_frames(d, ds.examples[0].num_frames))
    assert torch.allclose(ds.frames(0), expected, atol=1e-6)
    assert expected.shape[1] == live.tokens_per_frame
    assert load_live_model(final).cfg.llm == backbones[0]


def test_full_fine_tuning_saves_the_llm(backbones, tmp_path):
    cfg = _cfg(backbones, tmp_path, 'model.use_lora=false', 'train.max_steps=2',
               'train.save_steps=100')
    trainer, final = train(cfg)
    assert os.path.isfile(os.path.join(final, 'llm', 'model.safetensors'))
    loaded = load_live_model(final)
    live = trainer.model.live
    ids = torch.tensor([[live.eos_token_id, 5, 6]])
    with torch.no_grad():
        assert torch.allclose(live.lm(input_ids=ids).logits, loaded.lm(input_ids=ids).logits,
                              atol=1e-5)


def test_released_recipe_config_builds_its_training_arguments():
    """config/train/videollm-online-8b-v1plus.yaml: the paper's recipe, valid for the Trainer."""
    from transformers import TrainingArguments
    path = os.path.join(os.path.dirname(CONFIG), 'videollm-online-8b-v1plus.yaml')
    cfg = load_config(path, ['train.output_dir=/tmp/unused', 'train.bf16=false'])
    args = TrainingArguments(**{k: v for k, v in cfg['train'].items()})
    assert args.learning_rate == 2e-4 and args.num_train_epochs == 2
    assert args.warmup_steps == 0.05 and args.gradient_checkpointing  # ratio 0.05
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps * 8 == 64
    assert cfg['model']['lora'] == {'r': 128, 'alpha': 256, 'dropout': 0.05}
    assert cfg['data']['max_frames'] == 1200 and cfg['model']['adapter'] is None


def test_context_windows_train(backbones, tmp_path):
    """data.context_windows: long streams become bounded windows, and they train."""
    from live_ros.cli.train import engine_windows
    cfg = _cfg(backbones, tmp_path, 'data.train=synthetic:train:1:60:mixed',
               'data.context_windows=true', 'data.max_frames=null', 'model.context_budget=200',
               'model.context_keep_frames=8', 'train.max_steps=2', 'train.save_steps=100')
    live = build_model(cfg['model'], device='cpu')
    windows = engine_windows(live, load_data(cfg['data']['train']))
    assert len(windows) > 2 and all(w.meta['window'][1] - w.meta['window'][0] <= 121
                                    for w in windows)
    trainer, final = train(cfg)
    assert trainer.state.global_step == 2 and os.path.isdir(final)


def test_two_process_ddp_on_cpu(backbones, tmp_path):
    """Train with torchrun --nproc_per_node 2 (gloo on CPU): both ranks finish."""
    import subprocess
    import sys
    llm, vision = backbones
    torchrun = os.path.join(os.path.dirname(sys.executable), 'torchrun')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.path.join(
        os.path.dirname(__file__), '..'))
    out = subprocess.run(
        [torchrun, '--nproc_per_node', '2', '--master_port', '29517', '-m', 'live_ros.cli.train',
         '--config', CONFIG, f'model.llm={llm}', f'model.vision={vision}',
         f'train.output_dir={tmp_path}', 'train.max_steps=2', 'train.save_steps=100',
         'train.report_to=[]', 'train.per_device_train_batch_size=1', 'data.eval=null'],
        env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.count('trained model') == 2
    assert os.path.isfile(os.path.join(tmp_path, 'final', 'live_config.json'))
