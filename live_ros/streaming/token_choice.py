"""How the next token of a response is chosen: greedy, or sampled with transformers' warpers.

Chosen where the logits are (one token id read back per step, nothing more); the frame token
``<v>`` is never chosen.
"""

from __future__ import annotations

from typing import Optional, TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import LogitsProcessorList

    from live_ros.model.live_model import LiveModel


class TokenChoice:
    """Pick tokens for a session: greedy without ``sampling``, else its temperature / top-k / p."""

    def __init__(self, model: LiveModel, sampling: Optional[dict] = None, seed: int = 0):
        self.frame_token_id = model.frame_token_id
        self.generator = torch.Generator(device=model.device).manual_seed(seed)
        self.warpers = _build_warpers(sampling)

    def pick(self, logits: torch.Tensor, generated: list) -> torch.Tensor:
        """Choose the next token on the device (greedy, or sampled); a 0-dim tensor."""
        scores = logits.clone()
        if self.frame_token_id < scores.shape[-1]:
            scores[self.frame_token_id] = -float('inf')
        if self.warpers is None:
            return scores.argmax()
        ids = torch.tensor([generated], dtype=torch.long, device=scores.device)
        scores = self.warpers(ids, scores[None])[0]
        probs = scores.softmax(-1)
        return torch.multinomial(probs, 1, generator=self.generator)[0]


def _build_warpers(sampling: Optional[dict]) -> Optional[LogitsProcessorList]:
    """Build transformers logits warpers for sampling (None means greedy)."""
    if not sampling:
        return None
    from transformers import (LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper,
                              TopPLogitsWarper)
    warpers = LogitsProcessorList()
    if sampling.get('temperature', 1.0) != 1.0:
        warpers.append(TemperatureLogitsWarper(float(sampling['temperature'])))
    if sampling.get('top_k'):
        warpers.append(TopKLogitsWarper(int(sampling['top_k'])))
    if sampling.get('top_p', 1.0) < 1.0:
        warpers.append(TopPLogitsWarper(float(sampling['top_p'])))
    return warpers
