"""A backlog of frames in one forward, with the results frame by frame would give.

Frames pile up while a response is decoded (or a GPU frees up); feeding them one by one costs
a forward each, feeding them together costs one. The streaming-EOS decision is read at each
frame's last token; at the first frame that speaks the cache is cropped back to that frame's
end, the response is decoded, and the rest follow. test_pipeline proves the equivalence.

A part of StreamingSession (session.py), kept apart as its own concept: it uses the
session's encoder, backend, history, queries and policy, and its ``_push_one``,
``_answer_due``, ``_pending_tokens`` and ``respond``.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from live_ros.streaming.backend import decide_frames
from live_ros.streaming.response import Response

#: A frame: embeddings [T, D] from model.encode_frames, or an RGB uint8 HxWx3 image.
Frame = Union[torch.Tensor, np.ndarray]


class BacklogBatching:
    """StreamingSession's ``push_frames``: a backlog in as few forwards as it allows."""

    @torch.no_grad()
    def push_frames(self, frames: Sequence[Frame], times: Sequence[float],
                    tags: Optional[Sequence[Any]] = None,
                    submitted: Optional[Sequence[float]] = None) -> list[Response]:
        """Feed a backlog of frames in as few forwards as it allows; same results as push_frame.

        Frames that piled up while a response was decoded go into one forward, the streaming-
        EOS decision read at each frame's last token. At the first frame that speaks the cache
        is cropped back to that frame's end, the response is decoded, and the rest follow. A
        batch also ends where a queued question falls due, or where the bound would need a
        rebuild (those frames then go one by one, as push_frame feeds them).
        """
        frames = [self._as_embeds(frame) for frame in frames]
        times = [float(t) for t in times]
        tags = list(tags) if tags is not None else [None] * len(frames)
        now = time.perf_counter()
        starts = list(submitted) if submitted is not None else [now] * len(frames)
        i = 0
        while i < len(frames):
            n = self._batchable(times[i:])
            if n == 1:
                self._push_one(frames[i], times[i], starts[i], tags[i])
                i += 1
            else:
                i += self._push_batch(frames[i:i + n], times[i:i + n], tags[i:i + n],
                                      starts[i:i + n])
        return self.take_responses()

    def _batchable(self, times):
        """How many of these frames one forward may take (>= 1)."""
        n = 1
        while n < len(times) and not any(qt <= times[n - 1] for qt, _, _ in self.queries):
            n += 1
        pending = self.cache_tokens + self._pending_tokens()
        while n > 1 and not self.policy.fits(pending, n * (self.model.tokens_per_frame + 1)):
            n -= 1
        return n

    def _push_batch(self, frames, times, tags, starts):
        """One forward over ``frames``; return how many were kept (up to the first speaker)."""
        self._answer_due(lambda qt: qt < times[0])
        if self._batchable(times) < len(frames):   # an answer took the room
            self._push_one(frames[0], times[0], starts[0], tags[0])
            return 1
        snapshot, start_tokens, start_ids = self.enc.copy(), self.cache_tokens, len(self.fed_ids)
        ids, ends = [], []
        for _ in frames:
            self.enc.frame()
            ids += self.enc.take()
            ends.append(len(ids) - 1)
        embeds = torch.cat([frame.reshape(-1, frame.shape[-1]) for frame in frames])
        logits = self.backend.feed(ids, embeds, logits_at=ends)
        decisions = decide_frames(logits, self.model.interval_token_id, self.response_threshold)
        kept = next((k + 1 for k, (speak, _) in enumerate(decisions) if speak), len(frames))
        if kept < len(frames):   # forget the frames after the one that speaks
            self.backend.crop(start_tokens + ends[kept - 1] + 1)
            self.enc = snapshot
            for _ in range(kept):
                self.enc.frame()
            self.enc.take()
            ids = ids[:ends[kept - 1] + 1]
            embeds = embeds[:kept * self.model.tokens_per_frame]
        self.fed_ids[start_ids:] = ids
        if self.record_frames:
            self.fed_frames.append(embeds)
        self.max_cache_tokens = max(self.max_cache_tokens, self.cache_tokens)
        self.last_logits = logits[kept - 1]
        for frame in frames[:kept]:
            self.history.add_frame(frame)
        self.frame_index += kept
        t = self.last_frame_time = times[kept - 1]
        self.last_frame_tag, self.last_frame_submitted = tags[kept - 1], starts[kept - 1]
        if not self._answer_due(lambda qt: qt <= t):
            speak, p_interval = decisions[kept - 1]
            if speak:
                self.respond(t, starts[kept - 1], interval_prob=p_interval)
        return kept
