"""Response: one assistant turn of a stream, what the engine hands its streamer.

It carries its timing (stream time, the frame after which it was said, latency from that
frame's submit or the question's), the tag of that frame (the node's image header), its
query id (0: the model spoke on its own) and, when it ended before the model ended it, why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Why a response was cut short (Response.cut).
CANCELLED, INTERRUPTED, MAX_NEW_TOKENS, CONTEXT, EXPIRED = (
    'cancelled', 'interrupted', 'max_new_tokens', 'context', 'expired')


@dataclass
class Response:
    """One assistant turn; ``query_id`` 0 means the assistant spoke on its own."""

    text: str
    stream_time: float
    frame_index: int
    query_id: int = 0
    latency_s: float = 0.0
    cancelled: bool = False   # cut short (or never started) because its asker cancelled
    # why it ended before the model ended it: '' (it did), CANCELLED, INTERRUPTED,
    # MAX_NEW_TOKENS, CONTEXT, EXPIRED (a question not started within max_query_wait)
    cut: str = ''
    token_ids: list = field(default_factory=list)
    query: str = None
    interval_prob: float = None
    tag: Any = None                # the tag of the frame it follows (push_frame's ``tag``)
    frame_submitted: float = None  # perf_counter when that frame entered the engine
