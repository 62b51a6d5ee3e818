"""How the session runs the LLM over its one KV cache: the eager reference or the fast path.

Both backends take the same calls and give the same logits (test_backend):

* ``feed(ids, frame_embeds, logits_at)``: append tokens (``<v>`` positions carry frame
  embeddings) at the end of the cache; return the logits at the given positions of this feed;
* ``feed_token(token)``: append one decoded token still on the device (decoding one step
  ahead of reading it back);
* ``crop(length)``: forget everything after the first ``length`` tokens (a batched backlog
  whose frame decided to speak part way, the step decoded ahead of a turn's end);
* ``reset()``; ``length``: tokens in the cache, tracked on the host (never a device read).

``eager`` is plain transformers with a DynamicCache, kept as the reference. ``fast`` is what a
GPU needs at 8B, where each forward is host-bound (~1.3k aten ops): one StaticCache allocated
once for the context bound (fixed addresses, no re-allocation as the stream grows), and
optionally the one-token decode step and the frame step compiled (``torch.compile``;
'reduce-overhead' = CUDA graphs). LoRA merging and the on-device streaming-EOS decision are
shared by both (model.merge_lora, decide_frames).
"""

from __future__ import annotations

import inspect
from typing import Sequence, TYPE_CHECKING, Union

import torch
from transformers import DynamicCache, StaticCache

from live_ros.streaming.fair_lock import model_turns

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from live_ros.model.live_model import LiveModel
    from live_ros.streaming.camera_rows import CameraRows

#: Where a forward keeps logits: the last n positions (an int) or these positions.
LogitsAt = Union[int, torch.Tensor]

ENGINES = ('eager', 'fast')


def cache_argument(lm: torch.nn.Module) -> str:
    """Name of the KV-cache argument: 'cache' (transformers >= 5.2x) or 'past_key_values'."""
    params = inspect.signature(lm.forward).parameters
    return 'cache' if 'cache' in params else 'past_key_values'


class EagerBackend:
    """DynamicCache and the model's plain forward: the reference path."""

    #: the CameraRows whose row this backend's cache is (camera_rows.py), and which row
    rows = None
    row = 0

    def __init__(self, model: LiveModel):
        self.model = model
        self._cache_arg = cache_argument(model.base_lm)   # peft passes it through
        self.turns = model_turns(model)   # the streams of one model take turns at it
        self.cache = None
        self.length = 0

    def reset(self) -> None:
        """Empty the cache (a new stream, or a context rebuild)."""
        self.cache = None
        self.length = 0

    def _new_cache(self):
        return DynamicCache(config=self.model.base_lm.config)

    def _forward(self, embeds: torch.Tensor, logits_at: LogitsAt,
                 step: bool = False) -> torch.Tensor:
        out = self.model.lm(inputs_embeds=embeds, use_cache=True, logits_to_keep=logits_at,
                            **{self._cache_arg: self.cache})
        return out.logits[0]

    def feed(self, ids: list[int], frame_embeds: torch.Tensor | None = None,
             logits_at: Sequence[int] | None = None, step: bool = False) -> torch.Tensor:
        """Append ``ids``; return float logits [k, V] at ``logits_at`` (default: the last).

        ``step`` marks a fixed-shape frame or decode step (FastBackend may compile it).
        """
        if self.cache is None:
            self.cache = self._new_cache()
        input_ids = torch.tensor([ids], device=self.model.device)
        embeds = self.model.embed(input_ids, frame_embeds,
                                  frame_tokens=ids.count(self.model.frame_token_id))
        if logits_at is None:
            keep = 1
        else:
            keep = torch.as_tensor(logits_at, device=self.model.device)
        if step and self.rows is not None and logits_at is None:
            logits = self.rows.step(self, embeds)   # with other cameras' steps
        else:
            with self.turns:
                logits = self._forward(embeds, keep, step)
        self.length += len(ids)
        return logits.float()

    def feed_token(self, token: torch.Tensor) -> torch.Tensor:
        """Append one token given as a device tensor (decoding: no read back before the step).

        Returns float logits [1, V] after it; a decode step, which FastBackend may compile.
        """
        embeds = self.model.embed(token.reshape(1, 1))
        if self.rows is not None:
            logits = self.rows.step(self, embeds)   # with other cameras' steps
        else:
            with self.turns:
                logits = self._forward(embeds, 1, True)
        self.length += 1
        return logits.float()

    def crop(self, length: int) -> None:
        """Keep the first ``length`` tokens of the cache."""
        drop = self.length - int(length)
        if drop < 0:
            raise ValueError(f'cannot crop a cache of {self.length} tokens to {length}')
        if drop:
            self.cache.crop(-drop)
        self.length = int(length)


#: An eager step attends over the cache's filled part rounded up to this many slots, not the
#: whole bound: the static tensors stay in place, and a CPU does not pay attention over empty
#: slots (a 4096-token bound would cost a 135M model half its speed early in a stream).
VIEW_BUCKET = 256


class HostOffsetStaticCache(StaticCache):
    """A StaticCache that takes its length from the host for eager steps.

    transformers reads the static cache's length tensor to build an eager step's attention
    mask (a device sync per forward); the backend knows the length and hands it over, and the
    step then attends over a view of the filled slots only (``VIEW_BUCKET``). Compiled steps
    leave ``host_offset`` None: the whole cache and its length tensor, one fixed shape.
    """

    host_offset = None
    view_length = None

    def __init__(self, config: PretrainedConfig, max_cache_len: int):
        super().__init__(config=config, max_cache_len=max_cache_len)
        self.bound = int(max_cache_len)

    def set_step(self, offset: int | None, n: int) -> None:
        """Prepare an eager step of ``n`` tokens at ``offset`` (None: a compiled step)."""
        self.host_offset = offset
        self.view_length = None if offset is None else min(
            self.bound, -(-(offset + n) // VIEW_BUCKET) * VIEW_BUCKET)

    def crop(self, tokens_to_remove: int) -> None:
        """Forget the last tokens: only the write position moves back (in place, no copy).

        The stale slots after it are masked and overwritten by the next feed. (Some
        transformers 5.x versions have no StaticLayer.crop; this works with all of them.)
        """
        for layer in self.layers:
            if layer.is_initialized:
                layer.cumulative_length.sub_(abs(int(tokens_to_remove)))

    def get_query_offset(self, layer_idx: int = 0) -> int | torch.Tensor:
        """Return the host length when given, else the cache's own tensor."""
        if self.host_offset is not None:
            return self.host_offset
        return super().get_query_offset(layer_idx)

    def get_mask_sizes(self, query_length: int, layer_idx: int = 0) -> tuple[int, int]:
        """Mask over the viewed slots in an eager step, over the whole cache otherwise."""
        if self.view_length is not None:
            return self.view_length, 0
        return super().get_mask_sizes(query_length, layer_idx)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int,
               *args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the step's keys and values in place; return the viewed slots."""
        keys, values = super().update(key_states, value_states, layer_idx, *args, **kwargs)
        if self.view_length is not None:
            return keys[:, :, :self.view_length], values[:, :, :self.view_length]
        return keys, values


class FastBackend(EagerBackend):
    """One StaticCache for the context bound, allocated once; compiled steps on request.

    ``compile`` is None (no compilation), a torch.compile mode ('reduce-overhead' for CUDA
    graphs, 'default', 'max-autotune') or, prefixed 'backend:', a torch.compile backend
    ('backend:aot_eager' checks the graphs on a CPU). Only the two steps that recur are
    compiled, each with one fixed shape: the one-token decode step and the frame step after an
    interval token (frame tokens + 1). The first frame after a response, a query, the
    response prefix, a backlog batch and a rebuild's prefill run eagerly through the same
    cache.
    """

    def __init__(self, model: LiveModel, max_len: int, compile: str | None = None,
                 cache: HostOffsetStaticCache | None = None):
        super().__init__(model)
        # ``cache``: one given, e.g. a camera's row of a shared cache (camera_rows.py)
        self.cache = cache if cache is not None else HostOffsetStaticCache(
            config=model.base_lm.config, max_cache_len=max_len)
        self.step_lengths = (1, model.tokens_per_frame + 1)
        self._compiled = None
        self.compiled_lengths = set()   # feed lengths that run compiled (frame and decode steps)
        if compile:
            options = ({'backend': compile.split(':', 1)[1]} if compile.startswith('backend:')
                       else {'mode': compile})
            self._compiled = torch.compile(self._step, fullgraph=True, dynamic=False,
                                           **options)

    def reset(self) -> None:
        """Zero the cache in place: same addresses, so compiled graphs stay valid."""
        self.cache.reset()
        self.length = 0

    def _new_cache(self):
        return self.cache

    def _step(self, embeds: torch.Tensor, keep: LogitsAt) -> torch.Tensor:
        return super()._forward(embeds, keep)

    def _forward(self, embeds: torch.Tensor, logits_at: LogitsAt,
                 step: bool = False) -> torch.Tensor:
        n = embeds.shape[1]
        if self.length + n > self.cache.bound:
            raise RuntimeError(f'static cache full: {self.length} + {n} > {self.cache.bound} '
                               'tokens')
        if self._compiled is not None and step and n in self.step_lengths:
            self.compiled_lengths.add(n)
            self.cache.set_step(None, n)
            # CUDA graphs reuse their output buffer at the next replay: keep a copy
            return self._compiled(embeds, logits_at).clone()
        self.cache.set_step(self.length, n)
        return self._step(embeds, logits_at)


def make_backend(model: LiveModel, engine: str, bound: int | None,
                 compile: str | None = None, rows: CameraRows | None = None) -> EagerBackend:
    """Build the backend named by ``engine`` for a cache of at most ``bound`` tokens.

    ``rows``: the cameras' shared cache (camera_rows.py); the backend takes its next row.
    """
    if engine not in ENGINES:
        raise ValueError(f'engine must be one of {", ".join(ENGINES)}, got {engine!r}')
    if rows is not None and (engine != 'fast' or bound is None):
        raise ValueError("batched camera rows need engine 'fast' with a bounded context")
    if rows is not None:
        return rows.backend(bound, compile=compile)
    if engine == 'eager':
        return EagerBackend(model)
    if bound is None:
        raise ValueError("engine 'fast' needs a bounded context (a static cache); "
                         "context_mode 'reference' grows without limit: use engine 'eager'")
    return FastBackend(model, bound, compile=compile)


def decide_frames(logits: torch.Tensor, interval_token_id: int,
                  response_threshold: float) -> list[tuple[bool, float]]:
    """Streaming EOS at frame ends, on the device, read back in one transfer.

    ``logits`` [k, V] at k frames' last tokens. P(interval) below the threshold is zeroed
    before the argmax; a non-interval argmax means speak. Returns [(speak, p_interval)] * k.
    """
    probs = logits.float().softmax(-1)
    p_interval = probs[:, interval_token_id]
    masked = probs.clone()
    masked[:, interval_token_id] = torch.where(
        p_interval < response_threshold, torch.zeros_like(p_interval), p_interval)
    speak = masked.argmax(-1) != interval_token_id
    host = to_host(torch.stack([speak.to(p_interval.dtype), p_interval], 1))
    return [(bool(s), float(p)) for s, p in host]


def to_host(tensor: torch.Tensor) -> list:
    """Read a tensor back: the one device-to-host read of a frame step (a GPU sync)."""
    return tensor.tolist()
