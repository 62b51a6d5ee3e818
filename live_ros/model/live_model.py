"""LiveModel: vision tower + frame tokens + connector + causal LM (VideoLLM-online).

Layout that lets a released VideoLLM-online adapter load unchanged: the connector is the
attribute ``connector`` of the transformers causal LM itself (``connector.0``/``connector.2``
Linear layers), peft wraps that LM with LoRA on q/k/v/o/gate/up/down + lm_head and keeps the
connector as a ``modules_to_save`` module, so the adapter's keys are
``base_model.model.model.layers.*...lora_A.weight``, ``base_model.model.lm_head.lora_A.weight``
and ``base_model.model.connector.0.weight``. The vision tower stays outside (frozen, not saved).

``<v>`` is an extra special token (id = len(tokenizer) - 1) without resizing the embedding
table: ids are clamped before the lookup and ``<v>`` positions are overwritten by frame
embeddings.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from live_ros.model.config import CONFIG_NAME, LiveConfig, PRESETS, preset
from live_ros.model.connector import build_connector
from live_ros.model.preprocess import preprocess_frames
from live_ros.model.template import StreamTemplate
from live_ros.model.vision import FrameTokens, load_vision_tower

ADAPTER_DIR = 'adapter'
CONNECTOR_FILE = 'connector.safetensors'


def resolve_source(source):
    """Map a backbone source to ``(path_or_hub_id, gguf_file or None)``."""
    if source.startswith('backbones:'):
        from live_ros.model.backbones import resolve  # lazy: only for embedded backbones
        source = str(resolve(source[len('backbones:'):]))
    if source.endswith('.gguf') and os.path.isfile(source):
        return os.path.dirname(os.path.abspath(source)), os.path.basename(source)
    return source, None


def resolve_device_dtype(device=None, dtype=None):
    """CPU runs float32; CUDA runs bfloat16 (with SDPA attention)."""
    if device in (None, 'auto'):
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(device)
    if dtype in (None, 'auto'):
        dtype = torch.bfloat16 if device.type == 'cuda' else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return device, dtype


def load_tokenizer(source):
    """Load the LLM's tokenizer (local dir, hub id or gguf file)."""
    from transformers import AutoTokenizer
    path, gguf = resolve_source(source)
    kwargs = {'gguf_file': gguf} if gguf else {}
    tok = AutoTokenizer.from_pretrained(path, **kwargs)
    tok.padding_side = 'left'
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_llm(source, dtype, attn='sdpa'):
    """Load the causal LM (local dir, hub id or gguf file)."""
    from transformers import AutoModelForCausalLM
    path, gguf = resolve_source(source)
    kwargs = {'gguf_file': gguf} if gguf else {}
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn,
                                                **kwargs)


def lora_config(cfg):
    """Build the peft LoraConfig of a LiveConfig (connector as a modules_to_save module)."""
    from peft import LoraConfig
    lora = cfg.lora
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.targets, modules_to_save=list(lora.modules_to_save),
                      task_type='CAUSAL_LM', inference_mode=False)


class LiveModel(nn.Module):
    """The LIVE video LLM: frames -> frame tokens -> connector -> LLM, interleaved with text."""

    def __init__(self, cfg, tokenizer, llm, vision, device, dtype):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.lm = llm  # a transformers causal LM, or a peft model wrapping it
        self.vision = vision
        self.device_ = device
        self.dtype_ = dtype
        self.template = StreamTemplate.from_tokenizer(
            tokenizer, cfg.frame_token, cfg.interval_token, vision.tokens_per_frame,
            cfg.system_prompt)
        self.frame_token_id = self.template.frame_token_id
        self.interval_token_id = self.template.interval_token_id
        self.eos_token_id = self.template.eos_token_id
        self.tokens_per_frame = vision.tokens_per_frame
        self.vocab_size = self.base_lm.get_input_embeddings().weight.shape[0]

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: LiveConfig, device=None, dtype=None, adapter: Optional[str] = None,
                    is_trainable: bool = False) -> LiveModel:
        """Build from backbones named in ``cfg``.

        ``adapter`` (or ``cfg.adapter``): a peft adapter dir (e.g. videollm-online-8b-v1plus)
        holding LoRA + connector; without one a fresh connector is made and, with
        ``cfg.use_lora``, fresh LoRA layers (identity at start) ready for training.
        """
        device, dtype = resolve_device_dtype(device or cfg.device, dtype or cfg.dtype)
        tokenizer = load_tokenizer(cfg.llm)
        llm = load_llm(cfg.llm, dtype, cfg.attn)
        vision_path, _ = resolve_source(cfg.vision)
        vision_dtype = dtype if cfg.vision_dtype in (None, 'auto') else getattr(
            torch, cfg.vision_dtype)
        tower = load_vision_tower(vision_path, dtype=vision_dtype)
        vision = FrameTokens(tower, pool=cfg.pool, global_token=cfg.global_token,
                             autocast=cfg.vision_autocast)
        llm.connector = build_connector(vision.hidden_size, llm.config.hidden_size).to(dtype)
        adapter = adapter if adapter is not None else cfg.adapter
        if adapter:
            from peft import PeftModel
            llm = PeftModel.from_pretrained(llm, adapter, is_trainable=is_trainable)
        elif cfg.use_lora:
            from peft import get_peft_model
            llm = get_peft_model(llm, lora_config(cfg))
        if not is_trainable:
            llm.eval().requires_grad_(False)
        model = cls(cfg, tokenizer, llm, vision, device, dtype)
        if cfg.engine == 'fast' and not is_trainable:
            model.merge_lora()
        return model.to(device)

    @property
    def lora_merged(self):
        """True once merge_lora() folded the adapter into the base weights."""
        return getattr(self, '_lora_merged', False)

    def merge_lora(self) -> bool:
        """Fold LoRA into the base weights for inference (peft merge_and_unload).

        An unmerged LoRA adds two small matmuls per projection per step, which on a GPU at
        batch 1 cost host time, not FLOPs. With tied embeddings (SmolLM2) the lm_head LoRA
        would also change the input embedding table: the head is untied first. Returns False
        when there is no LoRA to merge.
        """
        if not hasattr(self.lm, 'merge_and_unload'):
            return False
        base = self.base_lm
        head = base.get_output_embeddings()
        head = getattr(head, 'base_layer', head)
        if head.weight.data_ptr() == base.get_input_embeddings().weight.data_ptr():
            head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=False)
            base.config.tie_word_embeddings = False
        self.lm = self.lm.merge_and_unload()
        self._lora_merged = True
        return True

    @property
    def base_lm(self):
        """The transformers causal LM (under peft when LoRA is on); it owns ``connector``."""
        lm = self.lm
        if hasattr(lm, 'get_base_model'):
            lm = lm.get_base_model()
        return lm

    @property
    def connector(self):
        """Return the MLP connector in use: under peft, the trained modules_to_save copy."""
        conn = self.base_lm.connector
        copies = getattr(conn, 'modules_to_save', None)
        if copies is not None and not getattr(conn, 'disable_adapters', False):
            return copies[conn.active_adapters[0]]
        return conn

    @property
    def device(self):
        """Device of the LLM."""
        return self.device_

    @property
    def dtype(self):
        """Compute dtype of the LLM."""
        return self.dtype_

    @property
    def max_context(self):
        """The LLM's trained window (max_position_embeddings)."""
        return int(getattr(self.base_lm.config, 'max_position_embeddings', 2048))

    # -- frames --------------------------------------------------------------------------------
    def preprocess(self, images):
        """RGB uint8 HxWx3 frames -> normalised pixels [B, 3, S, S] for this backbone."""
        c = self.cfg
        return preprocess_frames(images, c.frame_size, c.image_mean, c.image_std, c.pad_color,
                                 c.resize_filter)

    @torch.no_grad()
    def encode_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, H, W] -> frame embeddings [B, T, D] (vision + connector)."""
        feats = self.vision(pixel_values.to(self.device))
        return self.connector(feats.to(self.dtype))

    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 frames -> frame embeddings [B, T, D]."""
        return self.encode_frames(self.preprocess(images))

    # -- LLM -------------------------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor, frame_embeds: Optional[torch.Tensor] = None,
              frame_tokens: Optional[int] = None) -> torch.Tensor:
        """Input embeddings with ``<v>`` positions replaced by frame embeddings (in order).

        ``frame_tokens``: the number of ``<v>`` ids when the caller knows it on the host, so
        the check needs no device read (the streaming engine; one sync per frame).
        """
        table = self.base_lm.get_input_embeddings()
        embeds = table(input_ids.clamp(max=self.vocab_size - 1))
        if frame_embeds is not None:
            mask = input_ids == self.frame_token_id
            frame_embeds = frame_embeds.reshape(-1, embeds.shape[-1]).to(embeds.dtype)
            if frame_tokens is None:
                frame_tokens = int(mask.sum())
            if frame_tokens != frame_embeds.shape[0]:
                raise ValueError(f'{frame_tokens} frame tokens but '
                                 f'{frame_embeds.shape[0]} frame embeddings')
            embeds = embeds.masked_scatter(mask[..., None], frame_embeds)
        return embeds

    def forward(self, input_ids, frame_embeds=None, pixel_values=None, frame_features=None,
                **kwargs):
        """Run the LLM on interleaved ids; frames as embeddings, vision features or pixels.

        Features and pixels go through the connector with gradients (training); the frozen
        vision tower never takes gradients.
        """
        if frame_embeds is None and frame_features is None and pixel_values is not None:
            frame_features = self.vision(pixel_values.to(self.device))
        if frame_embeds is None and frame_features is not None:
            frame_embeds = self.connector(frame_features.to(self.device, self.dtype))
        inputs_embeds = self.embed(input_ids, frame_embeds)
        return self.lm(inputs_embeds=inputs_embeds, **kwargs)

    # -- save / load -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str) -> str:
        """Save what was trained: live_config.json + peft adapter dir (LoRA + connector).

        Without LoRA the connector goes to connector.safetensors.
        """
        from safetensors.torch import save_file
        if self.lora_merged:
            raise RuntimeError('LoRA is merged into the base weights (engine fast): saving '
                               'would lose it; load the model with engine eager to save it')
        os.makedirs(directory, exist_ok=True)
        cfg = self.cfg.replace(adapter=None, connector_weights=None)
        if hasattr(self.lm, 'peft_config'):
            # The base lm_head is frozen (only its LoRA trains): don't copy it into the adapter.
            self.lm.save_pretrained(os.path.join(directory, ADAPTER_DIR),
                                    save_embedding_layers=False)
            cfg = cfg.replace(adapter=ADAPTER_DIR)
        else:
            state = {k: v.detach().cpu().contiguous()
                     for k, v in self.connector.state_dict().items()}
            save_file(state, os.path.join(directory, CONNECTOR_FILE))
            cfg = cfg.replace(connector_weights=CONNECTOR_FILE)
        cfg.save(directory)
        return directory


def load_live_model(path: str, device=None, dtype=None, is_trainable: bool = False,
                    **overrides) -> LiveModel:
    """Load a model dir (live_config.json + adapter/ or connector.safetensors) or a preset."""
    if not os.path.isdir(path) and path in PRESETS:
        cfg = preset(path, **overrides)
        return LiveModel.from_config(cfg, device, dtype, is_trainable=is_trainable)
    if not os.path.isfile(os.path.join(path, CONFIG_NAME)):
        raise FileNotFoundError(f'{path} has no {CONFIG_NAME} and is not a preset')
    cfg = LiveConfig.load(path).replace(**overrides)
    if cfg.adapter and os.path.isdir(os.path.join(path, cfg.adapter)):
        cfg = cfg.replace(adapter=os.path.join(path, cfg.adapter))
    if cfg.connector_weights:
        cfg = cfg.replace(use_lora=False, adapter=None)
    model = LiveModel.from_config(cfg, device, dtype, is_trainable=is_trainable)
    if cfg.connector_weights:
        from safetensors.torch import load_file
        state = load_file(os.path.join(path, cfg.connector_weights))
        model.connector.load_state_dict(state)
    return model
