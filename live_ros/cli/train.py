"""live-train: learning in the video stream with a Hugging Face Trainer.

``live-train --config config/train/<name>.yaml [key.sub=value ...] [--resume [DIR]]``

A config has three sections:

- ``model``: ``preset`` (a LiveConfig preset) or ``init`` (a model to fine-tune: a trained
  model dir, ``embedded`` for the embedded default, or a preset with its adapter; its
  backbones, connector and LoRA are kept and trained on: config/train/finetune.yaml), plus
  any LiveConfig field (``llm``, ``vision``, ``use_lora``, ``lora: {r, alpha, dropout,
  targets}``, ...). The vision tower is always frozen; the connector is trained;
  the LLM gets LoRA (``use_lora: true``) or is fine-tuned fully (``use_lora: false``).
- ``data``: ``train`` / ``eval`` (specs: ``synthetic:<split>:<n>[:<seconds>]`` or dialogue
  JSON paths), ``format`` (``live``, ``per_frame``, ``interleaved``: the paper's baselines),
  ``stream_weight`` (w), ``max_frames``, ``feature_cache`` (a folder: encode each stream's
  frames once with the frozen tower and train from the cached features),
  ``context_windows`` (cut long streams into the windows the bounded streaming context holds,
  rebuilt layout included: live_ros.data.windows), ``label_user_frames`` (default true: the
  frame before a user turn learns the token that closes the stream, as the reference),
  ``augmentation`` (default false: conversation augmentation of the training set,
  live_ros.data.augment, as the released 8B-v1+ recipe).
- ``train``: Hugging Face TrainingArguments (output_dir, max_steps, learning_rate, ...);
  ``bf16: auto`` turns bf16 on when a GPU is present.

Multi-GPU runs go through the Trainer: ``torchrun --nproc_per_node N -m live_ros.cli.train ...``
or ``accelerate launch -m live_ros.cli.train ...``. Checkpoints and the final model directory
hold only what was trained (peft adapter with LoRA + connector, or the connector alone, in
safetensors) plus live_config.json; ``live_ros.model.load_live_model(dir)`` loads them.
"""

import argparse
import os
import sys

import torch
import yaml
from torch import nn

from live_ros.data.collator import StreamCollator, streaming_loss

DEFAULT_TRAIN_ARGS = {
    'per_device_train_batch_size': 1,
    'per_device_eval_batch_size': 1,
    'logging_steps': 10,
    'save_strategy': 'steps',
    'save_steps': 500,
    'save_total_limit': 2,
    'report_to': ['tensorboard'],
    'remove_unused_columns': False,
    'prediction_loss_only': True,
    'dataloader_num_workers': 0,
    'lr_scheduler_type': 'cosine',
    'warmup_steps': 0,
    'weight_decay': 0.0,
}


class LiveTrainModule(nn.Module):
    """What the Trainer optimises: frozen tower -> connector -> LLM, with the streaming loss.

    Frames arrive as cached tower features [N, T, C] or as pixels [N, 3, S, S] (encoded here
    without gradients); frame tokens are filled in batch order.
    """

    def __init__(self, live):
        super().__init__()
        self.live = live

    def forward(self, input_ids, labels=None, loss_weights=None, attention_mask=None,
                frame_features=None, pixel_values=None):
        """Return {'loss', 'logits'}; the loss is LIVE's weighted CE (collator.py)."""
        live = self.live
        if frame_features is None and pixel_values is not None:
            with torch.no_grad():
                frame_features = live.vision(pixel_values)
        frame_embeds = None
        if frame_features is not None:
            dtype = next(live.connector.parameters()).dtype
            frame_embeds = live.connector(frame_features.to(dtype))
        embeds = live.embed(input_ids, frame_embeds)
        if labels is None:
            out = live.lm(inputs_embeds=embeds, attention_mask=attention_mask)
            return {'logits': out.logits}
        if loss_weights is None:
            loss_weights = torch.ones_like(labels, dtype=torch.float32)
        # the LM head only where some sample has a label: LIVE's labels are sparse
        keep = (labels >= 0).any(0).nonzero().squeeze(1)
        out = live.lm(inputs_embeds=embeds, attention_mask=attention_mask, logits_to_keep=keep)
        loss = streaming_loss(out.logits, labels[:, keep], loss_weights[:, keep])
        return {'loss': loss, 'logits': out.logits}


def _trainer_class():
    from transformers import Trainer

    class LiveTrainer(Trainer):
        """Trainer that saves and resumes only the trained parts of a LiveModel."""

        connector_lr = None

        def _save(self, output_dir=None, state_dict=None):
            output_dir = output_dir or self.args.output_dir
            save_trained(self.model.live, output_dir)
            torch.save(self.args, os.path.join(output_dir, 'training_args.bin'))

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            load_trained(self.model.live, resume_from_checkpoint)

        def create_optimizer(self, model=None):
            """AdamW with the connector in a group of its own when it has its own rate.

            The connector starts from scratch while LoRA starts at identity; a higher rate
            for it alone is one of the recipe's levers (train.connector_learning_rate).
            """
            if self.optimizer is None and self.connector_lr:
                params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
                groups = [
                    {'params': [p for n, p in params if '.connector.' not in n]},
                    {'params': [p for n, p in params if '.connector.' in n],
                     'lr': self.connector_lr},
                ]
                cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
                kwargs['weight_decay'] = self.args.weight_decay
                self.optimizer = cls([g for g in groups if g['params']], **kwargs)
            return super().create_optimizer(model)

    return LiveTrainer


def save_trained(live, directory):
    """Save a LiveModel's trained parts; full fine-tuning also saves the LLM under llm/."""
    if not hasattr(live.lm, 'peft_config') and any(
            p.requires_grad for p in live.base_lm.model.parameters()):
        llm_dir = os.path.abspath(os.path.join(directory, 'llm'))
        connector = live.base_lm.connector
        del live.base_lm.connector
        try:
            live.base_lm.save_pretrained(llm_dir, safe_serialization=True)
        finally:
            live.base_lm.connector = connector
        live.tokenizer.save_pretrained(llm_dir)
        live.cfg = live.cfg.replace(llm=llm_dir)
    live.save_pretrained(directory)


def load_trained(live, directory):
    """Load trained weights saved by save_trained into a live model built for training."""
    from safetensors.torch import load_file
    adapter = os.path.join(directory, 'adapter', 'adapter_model.safetensors')
    if os.path.isfile(adapter):
        from peft import set_peft_model_state_dict
        set_peft_model_state_dict(live.lm, load_file(adapter))
    connector = os.path.join(directory, 'connector.safetensors')
    if os.path.isfile(connector):
        live.connector.load_state_dict(load_file(connector))
    llm = os.path.join(directory, 'llm', 'model.safetensors')
    if os.path.isfile(llm):
        live.base_lm.load_state_dict(load_file(llm), strict=False)


def parse_value(text):
    """YAML-typed value of a command-line override ('1e-3' -> 0.001, 'true' -> True)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(path, overrides=()):
    """Read a training YAML and apply 'a.b=value' overrides."""
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    for item in overrides:
        key, _, value = item.partition('=')
        if not _:
            raise ValueError(f'override {item!r} is not key=value')
        node = cfg
        parts = key.split('.')
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = parse_value(value)
    for section in ('model', 'data', 'train'):
        cfg.setdefault(section, {})
    return cfg


def build_model(model_cfg, device=None):
    """Build the LiveModel to train from the config's model section."""
    from live_ros.model.config import LoraSettings, preset, resolve_model_path
    from live_ros.model.live_model import LiveModel, load_live_model
    fields = dict(model_cfg)
    init = fields.pop('init', None)
    name = fields.pop('preset', 'default')
    seed = fields.pop('seed', 0)
    if isinstance(fields.get('lora'), dict):
        fields['lora'] = LoraSettings(**{**LoraSettings().__dict__, **fields['lora']})
    torch.manual_seed(seed)
    if init:   # a fine-tune: the model's backbones, connector and LoRA, trained on
        return load_live_model(resolve_model_path(init), device=device, is_trainable=True,
                               **fields)
    cfg = preset(name, **fields)
    return LiveModel.from_config(cfg, device=device, is_trainable=True)


def _data(cfg, live, specs, fmt, training=True):
    from live_ros.data.dataset import StreamDataset, load_data
    d = cfg['data']
    if not specs:
        return None
    dialogues = load_data(specs)
    if d.get('context_windows'):
        dialogues = engine_windows(live, dialogues)
    return StreamDataset(dialogues, live, fmt=fmt,
                         stream_weight=float(d.get('stream_weight', 1.0)),
                         max_frames=d.get('max_frames'), feature_cache=d.get('feature_cache'),
                         label_user_frames=bool(d.get('label_user_frames', True)),
                         augmentation=bool(d.get('augmentation', False)) and training)


def engine_windows(live, dialogues):
    """Cut long dialogues into the context windows the model's streaming session holds."""
    from live_ros.data.windows import context_windows
    from live_ros.streaming.context import context_bound
    cfg = live.cfg
    bound = context_bound(live.max_context, cfg.context_budget)
    return [w for d in dialogues for w in context_windows(
        d, live.template, bound, cfg.context_keep_frames, cfg.context_keep_turns,
        cfg.max_new_tokens)]


def train(cfg, resume=None):
    """Run training from a loaded config; return (trainer, final model dir)."""
    from transformers import TrainingArguments, set_seed
    from transformers.utils import logging
    logging.set_verbosity_warning()
    targs = {**DEFAULT_TRAIN_ARGS, **cfg['train']}
    connector_lr = targs.pop('connector_learning_rate', None)
    targs.setdefault('output_dir', 'runs/live')
    targs.setdefault('seed', 0)
    if targs.get('bf16', 'auto') == 'auto':
        targs['bf16'] = torch.cuda.is_available()
    if torch.get_num_threads() > (os.cpu_count() or 1):
        torch.set_num_threads(os.cpu_count() or 1)
    args = TrainingArguments(**targs)
    set_seed(args.seed)
    live = build_model(cfg['model'], device='cpu' if not torch.cuda.is_available() else None)
    fmt = cfg['data'].get('format', 'live')
    with args.main_process_first(desc='datasets'):
        train_ds = _data(cfg, live, cfg['data'].get('train'), fmt)
        eval_ds = _data(cfg, live, cfg['data'].get('eval'), fmt, training=False)
        for ds in (train_ds, eval_ds):
            if ds is not None:
                ds.prepare()
    if train_ds is None:
        raise ValueError('data.train is empty')
    live.vision.requires_grad_(False)
    module = LiveTrainModule(live)
    trainer = _trainer_class()(
        model=module, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=StreamCollator(live.tokenizer.pad_token_id or live.eos_token_id))
    trainer.connector_lr = float(connector_lr) if connector_lr else None
    if resume is True:
        from transformers.trainer_utils import get_last_checkpoint
        resume = get_last_checkpoint(args.output_dir)
    trainer.train(resume_from_checkpoint=resume or None)
    final = os.path.join(args.output_dir, 'final')
    if trainer.is_world_process_zero():
        save_trained(live, final)
        with open(os.path.join(final, 'train_config.yaml'), 'w') as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
    return trainer, final


def main(argv=None):
    """Command-line entry point (live-train, ros2 run live_ros train)."""
    p = argparse.ArgumentParser(prog='live-train', description=__doc__.split('\n')[0])
    p.add_argument('--config', required=True, help='config/train/<name>.yaml')
    p.add_argument('--resume', nargs='?', const=True, default=None,
                   help='resume from the last checkpoint in output_dir (or from DIR)')
    p.add_argument('overrides', nargs='*', help='key.sub=value, e.g. train.max_steps=100')
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = load_config(a.config, a.overrides)
    _, final = train(cfg, resume=a.resume)
    print(f'trained model: {final}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
