"""Random LiveModels of a named shape, built on the device with no weights to download.

``8b``: VideoLLM-online-8B-v1+'s shape (Llama-3-8B + SigLIP-large-patch16-384), for the GPU
benchmark and the latency script; ``tiny-8b``: the same vocabulary and image size with a tiny
body (a CPU check of the GPU scripts); ``small``: a few layers, a CPU latency probe. The
weights are random: these measure speed and memory, never quality.
"""

from __future__ import annotations

import time

SHAPES = {
    '8b': {
        'llm': dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                    num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                    max_position_embeddings=8192, rope_theta=500000.0, rms_norm_eps=1e-5),
        'vision': dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                       num_attention_heads=16, image_size=384, patch_size=16),
    },
}
SHAPES['tiny-8b'] = {   # the 8B vocabulary and image size on a tiny body
    'llm': dict(SHAPES['8b']['llm'], hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    'vision': dict(SHAPES['8b']['vision'], hidden_size=32, intermediate_size=64,
                   num_hidden_layers=2, num_attention_heads=2),
}
SHAPES['small'] = {   # a few layers: a CPU latency probe
    'llm': dict(vocab_size=400, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192),
    'vision': dict(hidden_size=192, intermediate_size=384, num_hidden_layers=4,
                   num_attention_heads=4, image_size=224, patch_size=16),
}


def build_random_model(shape: str, device, dtype, cfg=None, wrap_llm=None):
    """Build a random LiveModel of ``shape`` on ``device``; return (model, seconds, params).

    ``cfg``: the LiveConfig to run it with (default: the 8B-v1+ preset at the shape's image
    size, eager engine); ``wrap_llm(llm)``: e.g. LoRA in the released adapter's layout.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, SiglipVisionConfig
    from transformers import SiglipVisionModel

    from live_ros.model.config import preset
    from live_ros.model.connector import build_connector
    from live_ros.model.live_model import LiveModel
    from live_ros.model.vision import FrameTokens
    from live_ros.testing.tiny_models import _quiet_transformers, build_tokenizer

    _quiet_transformers()
    spec = SHAPES[shape]
    tok = build_tokenizer(vocab_size=600)
    llm_cfg = LlamaConfig(**spec['llm'], bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id,
                          tie_word_embeddings=False)
    vis_cfg = SiglipVisionConfig(**spec['vision'])
    torch.manual_seed(0)
    start = time.perf_counter()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            llm = AutoModelForCausalLM.from_config(llm_cfg, dtype=dtype,
                                                   attn_implementation='sdpa')
            tower = SiglipVisionModel._from_config(vis_cfg, dtype=dtype,
                                                   attn_implementation='sdpa')
            llm.connector = build_connector(vis_cfg.hidden_size, llm_cfg.hidden_size)
    finally:
        torch.set_default_dtype(previous)
    if wrap_llm is not None:
        llm = wrap_llm(llm)
    llm.to(device=device, dtype=dtype).eval().requires_grad_(False)
    tower.to(device=device, dtype=dtype).eval().requires_grad_(False)
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    cfg = cfg or preset('videollm-online-8b-v1plus', llm=f'random-{shape}-llm',
                        vision=f'random-{shape}-siglip', adapter=None, engine='eager',
                        frame_size=vis_cfg.image_size,
                        dtype=str(dtype).replace('torch.', ''),
                        device=torch.device(device).type)
    vision = FrameTokens(tower, pool=cfg.pool, global_token=cfg.global_token)
    model = LiveModel(cfg, tok, llm, vision, torch.device(device), dtype)
    params = sum(p.numel() for p in llm.parameters()) + sum(
        p.numel() for p in tower.parameters())
    return model, seconds, params
