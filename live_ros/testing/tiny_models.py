r"""Tiny random backbones for tests: a Llama-3-like tokenizer, Llama, SigLIP, and a LiveModel.

Everything is built offline in a directory (no hub): a byte-level BPE trained with
``tokenizers`` on template text using Llama-3's pre-tokenizer pattern (so ``]\\n`` and ``,``
are single tokens, as in Llama-3), a 2-layer Llama and a 2-layer SigLIP (full two-tower
checkpoint, like google/siglip-large-patch16-384). Typical use::

    model, cfg = build_tiny_live_model(tmp_path)            # LiveModel on CPU, float32
    silent, speak = steer_frame_decisions(model)            # [T, D] frame embeddings
"""

import os

import torch

BOS = '<|begin_of_text|>'
EOS = '<|eot_id|>'
# Llama-3's pre-tokenizer split pattern.
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r' ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+')
TINY_IMAGE = 32
TINY_PATCH = 8

_CORPUS = [
    'A multimodal AI assistant is helping users with some activities. Below is their '
    'conversation, interleaved with the list of video frames received by the assistant.\n',
    ']\nUser: What am I doing?\nAssistant: You are cutting a tomato.',
    ']\nAssistant: You pick up the knife.', '\n[', ']\nUser: ', '\nAssistant:', ',', ', ',
    'The person washes the pan. Now you open the fridge. What is next? Where is the cup?',
    'hello world, the quick brown fox jumps over the lazy dog. 0123456789 ([{}])!?;:.',
]


def build_tokenizer(directory=None, vocab_size=400):
    """Train a small Llama-3-like byte-level BPE and wrap it as a fast HF tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior='isolated'),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_CORPUS * 50, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                   pad_token=EOS)
    if directory is not None:
        fast.save_pretrained(directory)
    return fast


def save_tiny_llama(directory, hidden=64, layers=2, max_positions=4096, seed=0,
                    tie_word_embeddings=False):
    """Save a tiny random Llama + its tokenizer (vocab = tokenizer size, <v> not included)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = build_tokenizer(directory)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=max_positions,
                      tie_word_embeddings=tie_word_embeddings, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(directory)
    return directory


def save_tiny_llm(directory, kind='llama', hidden=64, layers=2, seed=0):
    """Save a tiny random causal LM of another family ('qwen2', 'mistral', 'llama')."""
    import transformers
    if kind == 'llama':
        return save_tiny_llama(directory, hidden=hidden, layers=layers, seed=seed)
    tok = build_tokenizer(directory)
    cls = {'qwen2': ('Qwen2Config', 'Qwen2ForCausalLM'),
           'mistral': ('MistralConfig', 'MistralForCausalLM')}[kind]
    torch.manual_seed(seed)
    cfg = getattr(transformers, cls[0])(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    getattr(transformers, cls[1])(cfg).save_pretrained(directory)
    return directory


def save_tiny_vision(directory, kind='siglip', hidden=32, layers=2, seed=0):
    """Save a tiny random vision tower: 'siglip', 'clip' (full two-tower) or 'dinov2'."""
    import transformers
    if kind == 'siglip':
        return save_tiny_siglip(directory, hidden=hidden, layers=layers, seed=seed)
    torch.manual_seed(seed)
    vision = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                  num_attention_heads=2, image_size=TINY_IMAGE, patch_size=TINY_PATCH)
    if kind == 'clip':
        text = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                    num_attention_heads=2, vocab_size=64)
        model = transformers.CLIPModel(transformers.CLIPConfig(
            text_config=text, vision_config=vision, projection_dim=hidden))
    elif kind == 'dinov2':
        vision.pop('intermediate_size')
        model = transformers.Dinov2Model(transformers.Dinov2Config(mlp_ratio=2, **vision))
    else:
        raise ValueError(kind)
    model.save_pretrained(directory)
    return directory


def save_tiny_siglip(directory, hidden=32, layers=2, seed=0, image_size=TINY_IMAGE,
                     patch_size=TINY_PATCH):
    """Save a tiny random full SigLIP checkpoint (text + vision, like the real one)."""
    from transformers import SiglipConfig, SiglipModel
    torch.manual_seed(seed)
    cfg = SiglipConfig(
        text_config=dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                         num_attention_heads=2, vocab_size=64, bos_token_id=1,
                         eos_token_id=2, pad_token_id=0),
        vision_config=dict(hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=layers, num_attention_heads=2,
                           image_size=image_size, patch_size=patch_size))
    SiglipModel(cfg).save_pretrained(directory)
    return directory


def save_tiny_backbones(root):
    """Save tiny Llama and SigLIP under ``root`` (once); return ``(llm_dir, vision_dir)``."""
    llm, vision = os.path.join(str(root), 'tiny-llama'), os.path.join(str(root), 'tiny-siglip')
    if not os.path.isfile(os.path.join(llm, 'config.json')):
        save_tiny_llama(llm)
    if not os.path.isfile(os.path.join(vision, 'config.json')):
        save_tiny_siglip(vision)
    return llm, vision


def tiny_config(root, **overrides):
    """Return the 'tiny' preset pointing at tiny backbones saved under ``root``."""
    from live_ros.model.config import preset
    llm, vision = save_tiny_backbones(root)
    return preset('tiny', llm=llm, vision=vision, **overrides)


def build_tiny_live_model(root, seed=0, **overrides):
    """Return ``(LiveModel, LiveConfig)`` built from tiny backbones under ``root`` (CPU fp32).

    Sets torch to one thread: tiny matmuls only lose from threading, and the test machine is
    shared.
    """
    from live_ros.model.live_model import LiveModel
    _quiet_transformers()
    torch.set_num_threads(1)
    cfg = tiny_config(root, **overrides)
    torch.manual_seed(seed)
    model = LiveModel.from_config(cfg, device='cpu', dtype=torch.float32)
    return model, cfg


def steer_frame_decisions(model, scale=50.0, seed=0):
    """Make a tiny model's frame decisions controllable; return ``(silent, speak)`` embeds.

    Frame embeddings with a huge norm dominate the residual stream, so the last frame token's
    final hidden state points along their direction; lm_head rows are set so that direction
    ``silent`` predicts the interval token and ``speak`` predicts the response start token.
    Both are ``[tokens_per_frame, D]`` to pass to ``StreamingSession.push_frame``.
    """
    gen = torch.Generator().manual_seed(seed)
    lm = model.base_lm
    d = lm.config.hidden_size
    basis, _ = torch.linalg.qr(torch.randn(d, 2, generator=gen))
    u, v = basis[:, 0], basis[:, 1]
    head = lm.get_output_embeddings()
    head = getattr(head, 'base_layer', head)  # under LoRA the Linear is wrapped
    with torch.no_grad():
        head.weight[model.interval_token_id] = u * 10.0
        head.weight[model.template.response_start_id] = v * 10.0
    t = model.tokens_per_frame
    silent = (u * scale).repeat(t, 1).to(model.dtype)
    speak = (v * scale).repeat(t, 1).to(model.dtype)
    return silent, speak


def _quiet_transformers():
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()
