"""Bounded context for always-on streaming.

The reference VideoLLM-online keeps appending to its KV cache; past the LLM's trained window
(~8K tokens for Llama-3) it degrades and eventually talks every frame. Policy here:

* bound = min(LLM max_position_embeddings, configured token budget);
* before anything is fed, the session checks that the cache plus what it is about to feed
  (a frame, or a query plus ``max_new_tokens``) fits the bound; if not it **rebuilds** the
  cache from scratch: system prompt + up to ``keep_turns`` older dialogue turns as text + the
  most recent ``keep_frames`` frames with the turns that happened among them, in order, in the
  normal template (so the model stays inside the layout and window it was trained on);
* the rebuilt prompt is kept under half the bound (older turns, then oldest frames, are
  dropped until it fits), so a rebuild happens at most every ~bound / 2 tokens: one prefill of
  <= bound / 2 tokens, i.e. a flat amortised per-frame cost.

Positions restart at 0 after a rebuild (the cache is new), so RoPE never leaves the window.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from live_ros.model.template import DialogueEncoder, StreamTemplate


class ContextHistory:
    """What a rebuild can replay: recent frames (embeddings) and dialogue turns (text)."""

    def __init__(self, keep_frames: int = 60, keep_turns: int = 8):
        self.keep_frames = max(1, int(keep_frames))
        self.window = deque()  # ('frame', embeds) / ('user', text) / ('assistant', text)
        self.older_turns = deque(maxlen=max(0, int(keep_turns)))
        self._frames_in_window = 0

    def add_frame(self, embeds: object) -> None:
        """Record a fed frame's embeddings [T, D]."""
        self.window.append(('frame', embeds))
        self._frames_in_window += 1
        while self._frames_in_window > self.keep_frames:
            self._pop_oldest()

    def add_turn(self, role: str, text: str) -> None:
        """Record a user or assistant turn as text."""
        self.window.append((role, text))

    def _pop_oldest(self):
        kind, value = self.window.popleft()
        if kind == 'frame':
            self._frames_in_window -= 1
        else:
            self.older_turns.append((kind, value))

    def events(self) -> list[tuple[str, object]]:
        """Chronological events to replay: older turns first, then the recent window."""
        return list(self.older_turns) + list(self.window)

    def shrink(self) -> bool:
        """Drop the oldest replayable item; False when nothing is left to drop."""
        if self.older_turns:
            self.older_turns.popleft()
            return True
        if self.window:
            self._pop_oldest()
            if self.older_turns:
                self.older_turns.popleft()
            return True
        return False


def context_bound(max_context: int, budget: int | None = None) -> int:
    """Token bound of the cache: the LLM's window, or the configured budget when smaller."""
    return min(max_context, budget) if budget else max_context


class ContextPolicy:
    """Decides when to rebuild and how large the rebuilt prompt may be.

    ``bound=None`` never rebuilds (the reference's unbounded cache, ``context_mode``
    'reference').
    """

    def __init__(self, bound: int | None):
        self.bound = None if bound is None else int(bound)
        self.rebuild_target = None if bound is None else self.bound // 2
        self.rebuilds = 0

    def fits(self, cache_tokens: int, need: int) -> bool:
        """Tell whether ``need`` more tokens still fit in the bound."""
        return self.bound is None or cache_tokens + need <= self.bound

    def plan(self, template: StreamTemplate, system_prompt: str,
             history: ContextHistory) -> tuple[DialogueEncoder, list]:
        """Plan a rebuild: (encoder holding the new prompt's ids, frame embeddings in order).

        System prompt + the history's older turns as text + its recent window (frames and
        the turns among them), in the normal template; the oldest items are dropped until
        the prompt fits ``rebuild_target``. Counted in ``rebuilds``.
        """
        while True:
            enc = template.encoder()
            enc.system(system_prompt)
            frames = []
            for kind, value in history.events():
                if kind == 'frame':
                    enc.frame()
                    frames.append(value)
                elif kind == 'user':
                    enc.user(value)
                else:
                    enc.assistant_prefix()
                    enc.assistant_text(value)
            if len(enc.ids) <= self.rebuild_target or not history.shrink():
                break
        self.rebuilds += 1
        return enc, frames
