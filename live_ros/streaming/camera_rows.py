"""Several cameras' steps in one forward: one static KV cache with a row per camera.

At batch 1 a frame step (a few tokens) or a decode step (one token) is bound by reading the
weights (a CPU) or by launching ~1k kernels (a GPU), not by arithmetic: two cameras' steps in
one forward cost much less than two forwards (RESULTS section 8). The cameras' streams have
different lengths (one answers, the other is silent), so each row keeps its own length,
positions and causal mask.

``CameraRows(model, cameras)`` allocates the keys and values of every layer once, [cameras,
heads, bound, dim]; ``rows.backend(bound)`` gives camera k a FastBackend whose static cache is
a view of row k, so everything a session does alone (queries, crops, rebuilds, compiled steps)
runs on its row as before. The steps that recur go through ``rows.step``: a frame step (an
interval token and a frame) and a decode step (one token of an answer). The camera queues its
step and waits for its turn at the model (fair_lock.py); whoever gets the turn first runs every
step queued by then in one forward, shorter ones padded. A camera that finds its step done
gives its turn back at once. Alone, a step is the backend's own (possibly compiled) step. The
only wait is for a camera that is answering (``GATHER_S``, 5 ms: its next token follows after
a little host work); without it the cameras would alternate at the model and never batch. So
steps batch when cameras wait for the model anyway: one camera answering while another's
frames come in, or both answering.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Optional, TYPE_CHECKING

import torch

from live_ros.streaming.backend import FastBackend, HostOffsetStaticCache, VIEW_BUCKET
from live_ros.streaming.fair_lock import model_turns

if TYPE_CHECKING:
    from live_ros.model.live_model import LiveModel

#: How long the camera at the model waits for a camera that is answering (its next decode
#: step): a little host work between two tokens; a forward takes tens of milliseconds.
GATHER_S = 0.005


@dataclass
class Step:
    """One camera's frame or decode step waiting for a forward, and what the forward gave."""

    backend: FastBackend
    embeds: torch.Tensor   # [1, n, D]
    logits: Optional[torch.Tensor] = None
    error: Optional[BaseException] = None

    @property
    def length(self) -> int:
        return self.embeds.shape[1]


class CameraRows:
    """The cameras' KV caches as rows of one tensor per layer; their waiting steps batched."""

    def __init__(self, model: LiveModel, cameras: int, gather_s: float = GATHER_S):
        if cameras < 1:
            raise ValueError(f'CameraRows needs at least one camera, got {cameras}')
        self.model = model
        self.cameras = int(cameras)
        self.bound = None
        self.keys, self.values = [], []   # per layer: [cameras, kv heads, bound, head dim]
        self._backends = []
        self._waiting = []   # steps queued, not yet run
        self._arrived = threading.Condition(threading.Lock())   # guards _waiting, _answering
        self._answering = {}   # row -> when its last decode step ended (None: not answering)
        self.gather_s = float(gather_s)
        self.turns = model_turns(model)
        #: forwards that ran several cameras' steps, and the steps they ran
        self.batched_forwards = 0
        self.batched_steps = 0

    # -- set-up ----------------------------------------------------------------------------
    def backend(self, bound: int, compile: Optional[str] = None) -> FastBackend:
        """Return the next camera's backend: a FastBackend over its row of the shared cache."""
        if len(self._backends) == self.cameras:
            raise ValueError(f'all {self.cameras} camera rows are taken')
        if self.bound is None:
            self._allocate(int(bound))
        elif int(bound) != self.bound:
            raise ValueError(f'every camera row has {self.bound} tokens of context; a session '
                             f'asked for {bound} (give the cameras one context_budget)')
        backend = FastBackend(self.model, self.bound, compile=compile,
                              cache=self._row_cache(len(self._backends)))
        backend.rows, backend.row = self, len(self._backends)
        self._backends.append(backend)
        return backend

    def _allocate(self, bound: int) -> None:
        cfg = self.model.base_lm.config
        heads = cfg.num_key_value_heads or cfg.num_attention_heads
        dim = getattr(cfg, 'head_dim', None) or cfg.hidden_size // cfg.num_attention_heads
        shape = (self.cameras, heads, bound, dim)
        device, dtype = self.model.device, self.model.dtype
        self.bound = bound
        for _ in range(cfg.num_hidden_layers):
            self.keys.append(torch.zeros(shape, device=device, dtype=dtype))
            self.values.append(torch.zeros(shape, device=device, dtype=dtype))

    def _row_cache(self, row: int) -> HostOffsetStaticCache:
        """Build a static cache whose layers are views of row ``row`` (writes land there)."""
        cache = HostOffsetStaticCache(config=self.model.base_lm.config, max_cache_len=self.bound)
        for layer, keys, values in zip(cache.layers, self.keys, self.values):
            layer.keys, layer.values = keys[row:row + 1], values[row:row + 1]
            layer.device = keys.device
            layer.batch_size, layer.num_heads = 1, keys.shape[1]
            layer.k_head_dim, layer.v_head_dim = keys.shape[-1], values.shape[-1]
            layer.cumulative_length = layer.cumulative_length.to(keys.device)
            layer.is_initialized = True
            # as StaticLayer does: fixed addresses, so CUDA graphs write into the row itself
            for tensor in (layer.keys, layer.values, layer.cumulative_length):
                torch._dynamo.mark_static_address(tensor)
        return cache

    # -- steps ---------------------------------------------------------------------------
    def step(self, backend: FastBackend, embeds: torch.Tensor) -> torch.Tensor:
        """Run ``backend``'s step (``embeds`` [1, n, D]) with the others' steps queued by then.

        Returns its logits [1, V] after its last token. The caller advances its length.
        """
        mine = Step(backend, embeds)
        with self._arrived:
            self._waiting.append(mine)
            self._arrived.notify_all()
        with self.turns:
            if mine.logits is None and mine.error is None:
                batch = self._gather()
                self._run(batch)
                ended = time.monotonic()
                with self._arrived:
                    for step in batch:   # a decode step: its row is answering
                        self._answering[step.backend.row] = ended if step.length == 1 else None
        if mine.error is not None:
            raise mine.error
        return mine.logits

    def _gather(self) -> list[Step]:
        """Take the queued steps, after waiting up to ``gather_s`` for a row that is answering.

        A row whose decode step ended just now is answering: its next decode step follows
        after a little host work. Without this wait the cameras alternate at the model, each
        step alone; with it, an answer's tokens pair with the other cameras' frames and
        tokens. A row not answering is never waited for.
        """
        with self._arrived:
            deadline = time.monotonic() + self.gather_s
            while True:
                now = time.monotonic()
                queued = {step.backend.row for step in self._waiting}
                coming = any(ended is not None and now - ended < self.gather_s
                             and row not in queued for row, ended in self._answering.items())
                if not coming or now >= deadline:
                    break
                self._arrived.wait(deadline - now)
            batch, self._waiting = self._waiting, []
        return batch

    def _run(self, batch: list[Step]) -> None:
        longest = max(step.length for step in batch)
        if len(batch) > 1 and all(s.backend.length + longest <= self.bound for s in batch):
            try:
                for step, logits in zip(batch, self.forward(batch)):
                    step.logits = logits
                self.batched_forwards += 1
                self.batched_steps += len(batch)
            except BaseException as error:   # each camera raises it in its own thread
                for step in batch:
                    step.error = error
            return
        for step in batch:   # alone (or a row too near its bound to pad): its own step
            try:
                step.logits = step.backend._forward(step.embeds, 1, True)
            except BaseException as error:
                step.error = error

    def forward(self, batch: list[Step]) -> list[torch.Tensor]:
        """One forward of several rows' steps, each row at its own length.

        Steps shorter than the longest (n) are padded at their end: row b's tokens go at
        positions length_b .. length_b + n - 1 of its row, token i attends to the first
        length_b + i + 1 slots, so a real token never sees padding, and the padding's keys
        land past the row's length, where nothing reads them before they are overwritten.
        Returns each step's logits [1, V] after its last real token; each row's cache length
        (the layers' counters) advances by its own step's length.
        """
        n = max(step.length for step in batch)
        device = self.model.device
        offsets = [step.backend.length for step in batch]
        for step, offset in zip(batch, offsets):
            if offset + n > self.bound:
                raise RuntimeError(f'static cache full: {offset} + {n} > {self.bound} tokens')
        positions = (torch.tensor(offsets, device=device)[:, None]
                     + torch.arange(n, device=device))   # [B, n]
        view = min(self.bound, -(-(max(offsets) + n) // VIEW_BUCKET) * VIEW_BUCKET)
        slots = torch.arange(view, device=device)
        mask = slots[None, None, None, :] <= positions[:, None, :, None]   # [B, 1, n, view]
        cache = _RowsStep(self, [step.backend.row for step in batch], offsets, view)
        embeds = torch.cat([torch.nn.functional.pad(step.embeds, (0, 0, 0, n - step.length))
                            for step in batch])
        ends = sorted({step.length - 1 for step in batch})   # logits only where a step ends
        out = self.model.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                            use_cache=True, logits_to_keep=torch.tensor(ends, device=device),
                            **{batch[0].backend._cache_arg: cache})
        for step in batch:
            for layer in step.backend.cache.layers:
                layer.cumulative_length.add_(step.length)
        return [out.logits[i, ends.index(step.length - 1)][None] for i, step in enumerate(batch)]


class _RowsStep:
    """The cache one batched forward sees: writes each row at its own length, reads the rows.

    Rows next to each other are read as a view; others are gathered (a copy of the viewed
    slots), which only happens when some cameras between them have no step queued.
    """

    def __init__(self, rows: CameraRows, row_ids: list[int], offsets: list[int], view: int):
        self.rows, self.row_ids, self.offsets, self.view = rows, row_ids, offsets, view
        first = row_ids[0]
        self.contiguous = row_ids == list(range(first, first + len(row_ids)))

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int,
               *args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self.rows.keys[layer_idx], self.rows.values[layer_idx]
        n = key_states.shape[2]
        for i, (row, offset) in enumerate(zip(self.row_ids, self.offsets)):
            keys[row, :, offset:offset + n] = key_states[i]
            values[row, :, offset:offset + n] = value_states[i]
        if self.contiguous:
            rows = slice(self.row_ids[0], self.row_ids[-1] + 1)
            return keys[rows, :, :self.view], values[rows, :, :self.view]
        index = torch.tensor(self.row_ids, device=keys.device)
        return keys[index, :, :self.view], values[index, :, :self.view]
