"""Vision tower and frame tokens: a global token plus the patch grid pooled to k x k."""

import torch
from torch import nn
import torch.nn.functional as F

# Full two-tower checkpoints (e.g. google/siglip-large-patch16-384) hold the vision tower
# under `vision_model`; these classes load only that half.
_VISION_CLASSES = {
    'siglip': 'SiglipVisionModel',
    'clip': 'CLIPVisionModel',
    'siglip2': 'Siglip2VisionModel',
}


def load_vision_tower(source, dtype=None, device=None):
    """Load any Hugging Face vision tower (SigLIP, CLIP, DINOv2, ...) from a dir or hub id."""
    import transformers
    config = transformers.AutoConfig.from_pretrained(source)
    model_type = config.model_type
    kwargs = {'dtype': dtype} if dtype is not None else {}
    if model_type in _VISION_CLASSES:
        cls = getattr(transformers, _VISION_CLASSES[model_type])
        tower = cls.from_pretrained(source, **kwargs)
    else:
        tower = transformers.AutoModel.from_pretrained(source, **kwargs)
    if device is not None:
        tower = tower.to(device)
    return tower.eval().requires_grad_(False)


class FrameTokens(nn.Module):
    """Frozen vision tower returning ``[B, T, C]`` frame tokens, T = global + k * k.

    The global token is the tower's ``pooler_output`` (SigLIP's attention-pooled head, DINOv2's
    normed CLS) when ``global_token='pooler'`` and the tower has one, else the first hidden
    state (CLS); the patch grid (the last (H/p)*(W/p) hidden states, so CLS and register
    tokens are skipped) is adaptive-average-pooled to k x k, as in VideoLLM-online.
    """

    def __init__(self, tower, pool=3, global_token='pooler', autocast=None):
        super().__init__()
        self.tower = tower
        self.pool = pool
        self.global_token = global_token
        # dtype name for torch.autocast on CUDA (the reference: float32 weights, float16 math)
        self.autocast = getattr(torch, autocast) if autocast else None
        cfg = tower.config
        self.patch_size = getattr(cfg, 'patch_size', 16)
        self.hidden_size = cfg.hidden_size

    @property
    def tokens_per_frame(self):
        """Frame tokens per frame."""
        return (0 if self.global_token == 'none' else 1) + self.pool * self.pool

    @torch.no_grad()
    def forward(self, pixel_values):
        """Encode a normalised batch [B, 3, H, W] into frame tokens [B, T, C]."""
        param = next(self.tower.parameters())
        pixel_values = pixel_values.to(param.device, param.dtype)
        if self.autocast is not None and param.device.type == 'cuda':
            with torch.autocast('cuda', dtype=self.autocast):
                out = self.tower(pixel_values=pixel_values)
        else:
            out = self.tower(pixel_values=pixel_values)
        hidden = out.last_hidden_state
        b, _, h, w = pixel_values.shape
        gh, gw = h // self.patch_size, w // self.patch_size
        grid = hidden[:, -gh * gw:].reshape(b, gh, gw, -1).permute(0, 3, 1, 2)
        pooled = F.adaptive_avg_pool2d(grid.float(), self.pool).flatten(2).transpose(1, 2)
        pooled = pooled.to(hidden.dtype)
        if self.global_token == 'none':
            return pooled
        pooler = getattr(out, 'pooler_output', None)
        if self.global_token == 'pooler' and pooler is not None:
            first = pooler
        else:
            first = hidden[:, 0]
        return torch.cat([first[:, None], pooled], dim=1)
