"""The 8B-v1+ layout: backbones + a videollm-online-8b-v1plus-style adapter dir load as such.

The adapter is written by hand, independently of our save code, in the on-disk layout of the
released ``chenjoya/videollm-online-8b-v1plus`` (peft LoRA r=128, alpha=256, dropout 0.05 on
``model.*(q|k|v|o|gate|up|down)_proj|lm_head$``; connector as modules_to_save), on a tiny
random Llama and a tiny full SigLIP checkpoint.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from live_ros.model.config import LLAMA_LORA_TARGETS, preset
from live_ros.model.live_model import LiveModel
from live_ros.testing.tiny_models import save_tiny_backbones, TINY_IMAGE

PROJ = {'self_attn': ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
        'mlp': ['gate_proj', 'up_proj', 'down_proj']}

# Fields of an adapter_config.json as peft wrote it for the release (older peft versions
# write fewer keys; newer peft must still read them).
RELEASED_ADAPTER_CONFIG = {
    'alpha_pattern': {}, 'auto_mapping': None,
    'base_model_name_or_path': 'meta-llama/Meta-Llama-3-8B-Instruct', 'bias': 'none',
    'fan_in_fan_out': False, 'inference_mode': True, 'init_lora_weights': True,
    'layers_pattern': None, 'layers_to_transform': None, 'loftq_config': {},
    'lora_alpha': 256, 'lora_dropout': 0.05, 'megatron_config': None,
    'megatron_core': 'megatron.core', 'modules_to_save': ['connector'], 'peft_type': 'LORA',
    'r': 128, 'rank_pattern': {}, 'revision': None, 'target_modules': LLAMA_LORA_TARGETS,
    'task_type': 'CAUSAL_LM', 'use_dora': False, 'use_rslora': False,
}


def write_released_style_adapter(directory, llm_config, vision_hidden):
    """Write adapter_config.json + adapter_model.safetensors with the released key names."""
    directory.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(7)
    r, d, inter = 128, llm_config.hidden_size, llm_config.intermediate_size
    kv = llm_config.num_key_value_heads * (d // llm_config.num_attention_heads)
    shapes = {'q_proj': (d, d), 'k_proj': (kv, d), 'v_proj': (kv, d), 'o_proj': (d, d),
              'gate_proj': (inter, d), 'up_proj': (inter, d), 'down_proj': (d, inter)}
    tensors = {}

    def lora(prefix, out_features, in_features):
        tensors[prefix + '.lora_A.weight'] = torch.randn(r, in_features, generator=gen) * 0.02
        tensors[prefix + '.lora_B.weight'] = torch.randn(out_features, r, generator=gen) * 0.02

    for i in range(llm_config.num_hidden_layers):
        for block, names in PROJ.items():
            for name in names:
                lora(f'base_model.model.model.layers.{i}.{block}.{name}', *shapes[name])
    lora('base_model.model.lm_head', llm_config.vocab_size, d)
    tensors['base_model.model.connector.0.weight'] = torch.randn(d, vision_hidden, generator=gen)
    tensors['base_model.model.connector.0.bias'] = torch.randn(d, generator=gen)
    tensors['base_model.model.connector.2.weight'] = torch.randn(d, d, generator=gen) * 0.1
    tensors['base_model.model.connector.2.bias'] = torch.randn(d, generator=gen)
    save_file(tensors, str(directory / 'adapter_model.safetensors'), metadata={'format': 'pt'})
    (directory / 'adapter_config.json').write_text(json.dumps(RELEASED_ADAPTER_CONFIG))
    return tensors


@pytest.fixture(scope='module')
def released(tmp_path_factory):
    root = tmp_path_factory.mktemp('8b')
    llm_dir, vision_dir = save_tiny_backbones(root)
    from transformers import AutoConfig
    llm_cfg = AutoConfig.from_pretrained(llm_dir)
    vision_hidden = AutoConfig.from_pretrained(vision_dir).vision_config.hidden_size
    tensors = write_released_style_adapter(root / 'videollm-online-8b-v1plus', llm_cfg,
                                           vision_hidden)
    cfg = preset('videollm-online-8b-v1plus', llm=llm_dir, vision=vision_dir,
                 adapter=str(root / 'videollm-online-8b-v1plus'), frame_size=TINY_IMAGE)
    # CPU float32 so values compare exactly (the preset itself picks CUDA bf16 when present).
    model = LiveModel.from_config(cfg, device='cpu', dtype=torch.float32)
    return model, tensors, llm_cfg


def test_every_adapter_tensor_lands_in_the_model(released):
    from peft import get_peft_model_state_dict
    model, tensors, _ = released
    state = get_peft_model_state_dict(model.lm, save_embedding_layers=False)
    assert set(state) == set(tensors)
    for key, value in tensors.items():
        torch.testing.assert_close(state[key], value, msg=key)


def test_lora_scaling_and_connector_as_in_release(released):
    model, tensors, _ = released
    q_proj = model.base_lm.model.layers[0].self_attn.q_proj
    assert q_proj.scaling['default'] == 256 / 128
    assert model.base_lm.lm_head.r['default'] == 128
    x = torch.randn(3, model.vision.hidden_size)
    expected = F.linear(F.gelu(F.linear(x, tensors['base_model.model.connector.0.weight'],
                                        tensors['base_model.model.connector.0.bias'])),
                        tensors['base_model.model.connector.2.weight'],
                        tensors['base_model.model.connector.2.bias'])
    torch.testing.assert_close(model.connector(x), expected)


def test_lora_changes_the_llm_output(released):
    model, _, _ = released
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        with_lora = model(ids).logits
        with model.lm.disable_adapter():
            base = model.base_lm(input_ids=ids).logits
    assert not torch.allclose(with_lora, base, atol=1e-4)


def test_frame_placeholder_and_tokens_as_in_release(released):
    model, _, llm_cfg = released
    assert model.tokens_per_frame == 10
    assert model.frame_token_id == len(model.tokenizer) - 1 == llm_cfg.vocab_size
    assert model.base_lm.get_input_embeddings().weight.shape[0] == llm_cfg.vocab_size
    assert model.tokenizer.decode([model.interval_token_id]) == ','
    pixels = model.preprocess([torch.zeros(48, 64, 3, dtype=torch.uint8).numpy()])
    assert model.encode_frames(pixels).shape == (1, 10, llm_cfg.hidden_size)
