"""LiveModel on tiny random backbones: frame tokens, <v> trick, preprocessing, save/load."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from live_ros.model.live_model import load_live_model
from live_ros.model.preprocess import letterbox, preprocess_frames
from live_ros.testing.tiny_models import build_tiny_live_model, TINY_IMAGE


def test_letterbox_scales_longest_side_and_pads_centred():
    image = np.full((16, 64, 3), 200, dtype=np.uint8)
    out = letterbox(image, 32, pad_color=(0, 0, 0))
    assert out.shape == (32, 32, 3)
    assert (out[12:20] == 200).all()  # 16x64 -> 8x32, centred rows 12..19
    assert (out[:12] == 0).all() and (out[20:] == 0).all()
    pixels = preprocess_frames([image], 32, [0.5] * 3, [0.5] * 3)
    assert pixels.shape == (1, 3, 32, 32)
    assert torch.allclose(pixels[0, :, 0], torch.tensor(-1.0))  # black pad, mean = std = 0.5
    assert torch.allclose(pixels[0, :, 16], torch.tensor(200 / 255 * 2 - 1))


def test_shrinking_is_anti_aliased_by_default():
    """Shrink fine stripes 4x: 'area' keeps their brightness, bicubic aliases them.

    One column in five is lit; bicubic sampling turns that into strong false stripes.
    """
    image = np.zeros((128, 128, 3), dtype=np.uint8)
    image[:, ::5] = 255
    area = letterbox(image, 32).astype(float)
    cubic = letterbox(image, 32, resize_filter='bicubic').astype(float)
    assert abs(area.mean() - 51.0) < 2 and area.std() < 30
    assert abs(cubic.mean() - 51.0) > 8 and cubic.std() > 2 * area.std()
    with pytest.raises(ValueError):
        preprocess_frames([image], 32, [0.5] * 3, [0.5] * 3, resize_filter='nearest')


def test_configs_saved_before_resize_filter_load_as_bicubic():
    from live_ros.model.config import LiveConfig, preset
    assert preset('videollm-online-8b-v1plus').resize_filter == 'area'
    old = preset('default').to_dict()
    del old['resize_filter']
    assert LiveConfig.from_dict(old).resize_filter == 'bicubic'


def test_frame_tokens_are_pooler_plus_pooled_grid(tmp_path):
    model, cfg = build_tiny_live_model(tmp_path)
    assert model.tokens_per_frame == 10
    pixels = torch.randn(2, 3, TINY_IMAGE, TINY_IMAGE)
    out = model.vision.tower(pixel_values=pixels)
    grid = out.last_hidden_state.reshape(2, 4, 4, -1).permute(0, 3, 1, 2)
    pooled = F.adaptive_avg_pool2d(grid, 3).flatten(2).transpose(1, 2)
    expected = torch.cat([out.pooler_output[:, None], pooled], dim=1)
    torch.testing.assert_close(model.vision(pixels), expected)
    embeds = model.encode_frames(pixels)
    assert embeds.shape == (2, 10, model.base_lm.config.hidden_size)
    torch.testing.assert_close(embeds, model.connector(expected))


def test_frame_placeholder_is_clamped_and_overwritten(tmp_path):
    model, _ = build_tiny_live_model(tmp_path)
    v = model.frame_token_id
    assert v == len(model.tokenizer) - 1 == model.vocab_size  # table not resized
    ids = torch.tensor([[5, v, v, 7]])
    frames = torch.randn(2, model.base_lm.config.hidden_size)
    embeds = model.embed(ids, frames)
    table = model.base_lm.get_input_embeddings().weight
    torch.testing.assert_close(embeds[0, 1:3], frames)
    torch.testing.assert_close(embeds[0, 0], table[5])
    torch.testing.assert_close(embeds[0, 3], table[7])


def test_forward_with_pixels_equals_forward_with_frame_embeds(tmp_path):
    model, _ = build_tiny_live_model(tmp_path)
    enc = model.template.encoder()
    enc.system('hi')
    enc.frame()
    enc.frame()
    ids = torch.tensor([enc.take()])
    pixels = torch.randn(2, 3, TINY_IMAGE, TINY_IMAGE)
    with torch.no_grad():
        a = model(ids, pixel_values=pixels).logits
        b = model(ids, frame_embeds=model.encode_frames(pixels)).logits
    torch.testing.assert_close(a, b)


def _perturb(model):
    with torch.no_grad():
        for name, p in model.lm.named_parameters():
            if 'lora_B' in name or 'modules_to_save' in name:
                p.add_(torch.randn_like(p) * 0.05)


def test_lora_model_save_and_load_round_trip(tmp_path):
    model, cfg = build_tiny_live_model(tmp_path)
    _perturb(model)
    out_dir = tmp_path / 'trained'
    model.save_pretrained(out_dir)
    assert (out_dir / 'live_config.json').is_file()
    assert (out_dir / 'adapter' / 'adapter_model.safetensors').is_file()
    loaded = load_live_model(str(out_dir))
    ids = torch.tensor([[3, 4, model.frame_token_id] + [model.frame_token_id] * 9 + [9]])
    pixels = torch.randn(1, 3, TINY_IMAGE, TINY_IMAGE)
    with torch.no_grad():
        a = model(ids, pixel_values=pixels).logits
        b = loaded(ids, pixel_values=pixels).logits
        fresh, _ = build_tiny_live_model(tmp_path)
        c = fresh(ids, pixel_values=pixels).logits
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)  # the trained weights really came back


def test_connector_only_model_saves_connector_safetensors(tmp_path):
    model, cfg = build_tiny_live_model(tmp_path, use_lora=False)
    with torch.no_grad():
        model.connector[0].weight.add_(1.0)
    model.save_pretrained(tmp_path / 'c')
    assert (tmp_path / 'c' / 'connector.safetensors').is_file()
    loaded = load_live_model(str(tmp_path / 'c'))
    torch.testing.assert_close(loaded.connector[0].weight, model.connector[0].weight)
    assert not hasattr(loaded.lm, 'peft_config')


def test_connector_and_lora_get_gradients_vision_does_not(tmp_path):
    model, _ = build_tiny_live_model(tmp_path, use_lora=True)
    model.lm.train()
    for name, p in model.lm.named_parameters():
        p.requires_grad_('lora_' in name or 'modules_to_save' in name)
    enc = model.template.encoder()
    enc.system('hi')
    enc.frame()
    ids = torch.tensor([enc.take()])
    pixels = torch.randn(1, 3, TINY_IMAGE, TINY_IMAGE)
    out = model(ids, pixel_values=pixels, labels=ids.clamp(max=model.vocab_size - 1))
    out.loss.backward()
    assert model.connector[0].weight.grad is not None
    assert any(p.grad is not None for n, p in model.lm.named_parameters() if 'lora_A' in n)
    assert all(p.grad is None for p in model.vision.parameters())


def test_config_json_round_trip(tmp_path):
    from live_ros.model.config import LiveConfig, preset
    cfg = preset('videollm-online-8b-v1plus', context_budget=4096)
    cfg.save(tmp_path)
    loaded = LiveConfig.load(str(tmp_path))
    assert loaded == cfg and loaded.lora.r == 128


@pytest.mark.parametrize('llm_kind,vision_kind,global_token', [
    ('qwen2', 'clip', 'cls'), ('mistral', 'dinov2', 'pooler'), ('llama', 'dinov2', 'none')])
def test_other_backbone_families_load_and_stream(tmp_path, llm_kind, vision_kind,
                                                 global_token):
    from live_ros.model.config import preset
    from live_ros.model.live_model import LiveModel
    from live_ros.streaming.session import StreamingSession
    from live_ros.testing.tiny_models import save_tiny_llm, save_tiny_vision
    llm = save_tiny_llm(str(tmp_path / llm_kind), llm_kind)
    vision = save_tiny_vision(str(tmp_path / vision_kind), vision_kind)
    cfg = preset('tiny', llm=llm, vision=vision, global_token=global_token,
                 image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    model = LiveModel.from_config(cfg)
    assert model.tokens_per_frame == cfg.tokens_per_frame
    pixels = torch.randn(1, 3, TINY_IMAGE, TINY_IMAGE)
    out = model.vision.tower(pixel_values=pixels)
    grid = out.last_hidden_state[:, 1:]  # CLIP and DINOv2 put CLS first
    pooled = F.adaptive_avg_pool2d(grid.reshape(1, 4, 4, -1).permute(0, 3, 1, 2), 3)
    pooled = pooled.flatten(2).transpose(1, 2)
    tokens = model.vision(pixels)
    torch.testing.assert_close(tokens[:, -9:], pooled)
    if global_token == 'cls':
        torch.testing.assert_close(tokens[:, 0], out.last_hidden_state[:, 0])
    elif global_token == 'pooler':
        torch.testing.assert_close(tokens[:, 0], out.pooler_output)
    lora_names = [n for n, _ in model.lm.named_modules() if n.endswith('q_proj.lora_A')]
    assert len(lora_names) == 2  # LoRA found the attention projections of this family too
    session = StreamingSession(model, max_new_tokens=2, response_threshold=1.01)
    frame = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    (response,) = session.push_frame(frame, 0.0)
    assert response.frame_index == 0 and session.cache_tokens == len(session.fed_ids)


def test_vision_tower_precision_is_its_own_setting(tmp_path):
    """vision_dtype sets the tower's precision apart from the LLM's (float32 here)."""
    model, _ = build_tiny_live_model(tmp_path, vision_dtype='bfloat16')
    assert next(model.vision.tower.parameters()).dtype == torch.bfloat16
    assert model.dtype == torch.float32
    pixels = torch.randn(1, 3, TINY_IMAGE, TINY_IMAGE)
    assert model.vision(pixels).dtype == torch.bfloat16
    assert model.encode_frames(pixels).dtype == torch.float32
