"""StreamingSession: the LIVE inference engine over one continuous KV cache.

Frames, queries and answers all go into one KV cache; the past is never re-encoded (except by
the documented context rebuild, see context.py). How the LLM runs over that cache (the eager
reference, or a static cache with compiled steps) is the backend's business (backend.py).
After each frame the softmax at its last frame token decides: if P(interval) < response
threshold it is zeroed, and a non-interval argmax means the assistant speaks (streaming EOS
otherwise). A query asked at time t is inserted after the last frame at or before t and
answered at once. A backlog of frames goes in one forward (push_frames) with the same results.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import Any, Callable, Optional, Sequence, TYPE_CHECKING

import numpy as np
import torch

from live_ros.streaming.backend import decide_frames, make_backend
from live_ros.streaming.backlog import BacklogBatching, Frame
from live_ros.streaming.context import ContextHistory, ContextPolicy, context_bound
from live_ros.streaming.response import (CANCELLED, CONTEXT, INTERRUPTED, MAX_NEW_TOKENS,
                                         Response)
from live_ros.streaming.streamer import as_streamer, ResponseStreamer
from live_ros.streaming.text_stream import TextStream
from live_ros.streaming.token_choice import TokenChoice

__all__ = ['StreamingSession']

if TYPE_CHECKING:
    from live_ros.model.live_model import LiveModel
    from live_ros.model.template import DialogueEncoder

#: Room for a turn's template text around its words (']\nUser: ', '\nAssistant:', eos), an
#: upper bound for every tokenizer we use.
TURN_TEMPLATE_TOKENS = 16
#: Room a response being decoded must keep: its next token, the eos the template appends at a
#: cut, and the interval or stream token that follows.
END_OF_TURN_TOKENS = 3


class StreamingSession(BacklogBatching):
    """Push frames and questions in stream time; get timed responses.

    ``push_frame(frame, t, tag)`` takes frame embeddings [T, D] (from ``model.encode_frames``)
    or an RGB uint8 HxWx3 image and returns the responses it produced (including those of
    queries that became due); ``tag`` (anything: an image header) comes back on every
    Response that follows the frame. ``ask(text, t)`` returns a query id; the answer comes
    from the call that reaches time t (or at once when t is not after the last frame). A
    ``streamer`` (streamer.py; or ``on_token`` / ``on_response`` functions) gets the text as it
    is decoded and every finished response.
    """

    def __init__(self, model: LiveModel, response_threshold: Optional[float] = None,
                 max_new_tokens: Optional[int] = None, context_budget: Optional[int] = None,
                 sampling: Optional[dict] = None,
                 on_token: Optional[Callable[[int, str, float], None]] = None,
                 on_response: Optional[Callable[[Response], None]] = None,
                 streamer: Optional[ResponseStreamer] = None,
                 system_prompt: Optional[str] = None, keep_frames: Optional[int] = None,
                 keep_turns: Optional[int] = None, seed: int = 0,
                 context_mode: Optional[str] = None, engine: Optional[str] = None,
                 compile: Optional[str] = None, backend=None, record_frames: bool = False,
                 rows=None):
        cfg = model.cfg
        self.context_mode = context_mode or cfg.context_mode
        if self.context_mode not in ('bounded', 'reference'):
            raise ValueError(f"context_mode must be 'bounded' or 'reference', "
                             f'got {self.context_mode!r}')
        self.model = model
        self.template = model.template
        self.response_threshold = float(cfg.response_threshold if response_threshold is None
                                        else response_threshold)
        self.max_new_tokens = int(max_new_tokens or cfg.max_new_tokens)
        self.system_prompt = cfg.system_prompt if system_prompt is None else system_prompt
        budget = context_budget or cfg.context_budget
        self.context_bound = context_bound(model.max_context, budget)
        self.sampling = dict(sampling) if sampling else None
        self.streamer = as_streamer(streamer, on_token, on_response)
        self._keep_frames = keep_frames or cfg.context_keep_frames
        self._keep_turns = cfg.context_keep_turns if keep_turns is None else keep_turns
        self._query_ids = itertools.count(1)
        self.tokens = TokenChoice(model, self.sampling, seed)
        self.policy = ContextPolicy(None if self.context_mode == 'reference'
                                    else self.context_bound)
        # fed_frames holds every frame embedding the cache holds: for tests that check the
        # cache against a full forward, never in an always-on deployment.
        self.record_frames = record_frames
        self.engine = engine or cfg.engine
        # ``backend``: one already built (its static cache and compiled steps), e.g. shared by
        # benchmark sessions run one after the other; it is reset here. ``rows``: the cameras'
        # shared cache (camera_rows.py), this session's frame steps batched with theirs.
        self.backend = backend or make_backend(
            model, self.engine, self.policy.bound,
            compile=cfg.engine_compile if compile is None else compile, rows=rows)
        # Set from another thread (engine shutdown): the response being decoded ends at its
        # next token, as if max_new_tokens was reached, so the cache stays consistent.
        self._interrupted = threading.Event()
        self._cancelled = set()   # query ids whose asker gave up; guarded by _cancel_lock
        self._cancel_lock = threading.Lock()
        self.reset()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new stream: empty cache, system prompt pending, no queued queries."""
        self.backend.reset()
        self.enc = self.template.encoder()
        self.enc.system(self.system_prompt)
        self.history = ContextHistory(self._keep_frames, self._keep_turns)
        self.queries = []  # (t, query_id, text), sorted by t
        self._query_submitted = {}  # query_id -> perf_counter when asked
        self.frame_index = -1
        self.last_frame_time = None
        self.last_frame_tag = self.last_frame_submitted = None
        self.last_logits = None
        self.fed_ids = []  # ids in the cache (since the last rebuild)
        self.fed_frames = []  # with record_frames: frame embeddings in the cache, likewise
        self.responses = deque(maxlen=10000)  # recent ones; an always-on stream runs for hours
        self._outbox = []
        self.max_cache_tokens = 0
        self._interrupted.clear()
        with self._cancel_lock:
            self._cancelled.clear()

    @property
    def cache_tokens(self) -> int:
        """Tokens held by the KV cache (counted on the host: no device read)."""
        return self.backend.length

    @property
    def rebuilds(self) -> int:
        """Number of context rebuilds so far."""
        return self.policy.rebuilds

    def interrupt(self) -> None:
        """End the response being decoded at its next token, and every later one, until resume.

        Thread-safe; a shutdown must not wait for max_new_tokens tokens on a loaded CPU.
        """
        self._interrupted.set()

    def resume(self) -> None:
        """Let responses run to their end again after interrupt(), keeping the context."""
        self._interrupted.clear()

    def cancel(self, query_id: int) -> None:
        """Give up on a question: not answered if still queued, cut at its next token if now.

        Thread-safe (an action client cancels from the executor). Either way one Response with
        ``cancelled`` set is produced for it; a cut answer keeps its words in the context and
        the cache stays consistent, as when max_new_tokens is reached.
        """
        with self._cancel_lock:
            self._cancelled.add(int(query_id))

    def _is_cancelled(self, query_id):
        with self._cancel_lock:
            return query_id in self._cancelled

    def _forget_cancel(self, query_id):
        with self._cancel_lock:
            self._cancelled.discard(query_id)

    # -- public API ------------------------------------------------------------------------
    @torch.no_grad()
    def push_frame(self, frame: Frame, t: float, tag: Any = None,
                   submitted: Optional[float] = None) -> list[Response]:
        """Feed one frame at stream time ``t``; return the responses produced.

        ``submitted``: perf_counter when the frame entered the engine (default: now), where a
        response's latency starts.
        """
        start = time.perf_counter() if submitted is None else submitted
        self._push_one(frame, float(t), start, tag)
        return self.take_responses()

    def attach(self, streamer: ResponseStreamer) -> None:
        """Install the streamer of a session built without one (StreamPipeline does)."""
        if self.streamer is not None:
            raise ValueError('the session has a streamer already: give it to the pipeline')
        self.streamer = streamer

    def _push_one(self, frame, t, start, tag=None):
        """Feed a frame, then answer what is due or act on it (responses stay in the outbox)."""
        logits = self.feed_frame(frame, t, tag, start)
        if not self._answer_due(lambda qt: qt <= t):
            self.after_frame(logits, t, start)

    def after_frame(self, logits: torch.Tensor, t: float, start: float) -> None:
        """Act on a frame no question is due after: LIVE's streaming-EOS decision.

        The hook of the paper's baselines (streaming/baselines.py), which reply after every
        frame instead; ``start`` is when the frame arrived (the response's latency).
        """
        speak, p_interval = self.decide(logits)
        if speak:
            self.respond(t, start, interval_prob=p_interval)

    @torch.no_grad()
    def feed_frame(self, frame: Frame, t: float, tag: Any = None,
                   submitted: Optional[float] = None) -> torch.Tensor:
        """Answer earlier queries, then feed the frame; return the logits after its last token.

        The frame half of ``push_frame``, without what follows it (``after_frame``).
        """
        embeds = self._as_embeds(frame)
        t = float(t)
        self._answer_due(lambda qt: qt < t)
        self._ensure_room(self.model.tokens_per_frame + 1)
        self.enc.frame()
        logits = self._feed(self.enc.take(), embeds, step=True)
        self.frame_index += 1
        self.last_frame_time = t
        self.last_frame_tag, self.last_frame_submitted = tag, submitted
        self.history.add_frame(embeds)
        return logits

    @torch.no_grad()
    def ask(self, text: str, t: Optional[float] = None, query_id: Optional[int] = None,
            submitted: Optional[float] = None) -> int:
        """Queue a question at stream time ``t`` (default: now); return its query id.

        ``submitted``: perf_counter when it was asked (default: now), where its latency starts.
        """
        if query_id is None:
            query_id = next(self._query_ids)
        self._query_submitted[query_id] = time.perf_counter() if submitted is None else submitted
        if t is None:
            t = self.last_frame_time if self.last_frame_time is not None else 0.0
        self.queries.append((float(t), query_id, text))
        self.queries.sort(key=lambda q: q[0])
        if self.last_frame_time is not None and t <= self.last_frame_time:
            self._answer_due(lambda qt: qt <= self.last_frame_time)
        return query_id

    @torch.no_grad()
    def flush_queries(self) -> list[Response]:
        """Answer every queued query now (end of stream); return the responses."""
        self._answer_due(lambda qt: True)
        return self.take_responses()

    def take_responses(self) -> list[Response]:
        """Responses produced since the last call (push_frame returns them too)."""
        out, self._outbox = self._outbox, []
        return out

    # -- internals -------------------------------------------------------------------------
    def _as_embeds(self, frame):
        if isinstance(frame, np.ndarray) or (isinstance(frame, torch.Tensor)
                                             and frame.dtype == torch.uint8):
            return self.model.encode_images([frame])[0]
        embeds = frame.to(self.model.device, self.model.dtype)
        if embeds.dim() == 3:
            embeds = embeds[0]
        return embeds

    def _feed(self, ids, frame_embeds=None, step=False):
        """Feed ids at the end of the cache; return the logits after the last one.

        ``step``: a fixed-shape frame or decode step, which a compiling backend may compile.
        """
        if not ids:
            return self.last_logits
        self.last_logits = self.backend.feed(ids, frame_embeds, step=step)[-1]
        self.fed_ids.extend(ids)
        if frame_embeds is not None and self.record_frames:
            self.fed_frames.append(frame_embeds.reshape(-1, frame_embeds.shape[-1]))
        self.max_cache_tokens = max(self.max_cache_tokens, self.cache_tokens)
        return self.last_logits

    def decide(self, logits: torch.Tensor) -> tuple[bool, float]:
        """Streaming EOS after a frame: (speak, P(interval)), one device read."""
        return decide_frames(logits[None], self.model.interval_token_id,
                             self.response_threshold)[0]

    def _answer_due(self, is_due):
        answered = False
        while self.queries and is_due(self.queries[0][0]):
            qt, query_id, text = self.queries.pop(0)
            t = qt if self.last_frame_time is None else max(qt, self.last_frame_time)
            start = self._query_submitted.pop(query_id, None) or time.perf_counter()
            if self._is_cancelled(query_id):   # never asked: the context does not see it
                self._forget_cancel(query_id)
                self._emit(Response(text='', stream_time=t, frame_index=self.frame_index,
                                    query_id=query_id, cancelled=True, query=text,
                                    cut=CANCELLED))
                continue
            self.respond(t, start, query_id=query_id, query=text)
            answered = True
        return answered

    def _pending_tokens(self):
        # Upper bound of what is emitted but not fed yet (eos, text such as ']').
        return self.enc.unfed

    def _ensure_room(self, need):
        if not self.policy.fits(self.cache_tokens + self._pending_tokens(), need):
            self._rebuild()

    def respond(self, t: float, start: float, query_id: int = 0, query: Optional[str] = None,
                interval_prob: Optional[float] = None,
                empty_is_silence: bool = False) -> Optional[Response]:
        """Decode an assistant turn into the cache now; return its Response (or None).

        ``query`` is asked first when given. ``empty_is_silence``: a turn that ends at once
        (eos right after ``Assistant:``) stays in the context but is no response, the
        baselines' silence.
        """
        query_tokens = len(self.template.tokenize(query)) if query else 0
        self._ensure_room(query_tokens + TURN_TEMPLATE_TOKENS + self.max_new_tokens)
        if query is not None:
            self.enc.user(query)
            self.history.add_turn('user', query)
        self.enc.assistant_prefix()
        logits = self._feed(self.enc.take())
        generated = []
        text = TextStream(self.model.tokenizer)
        pending = self.tokens.pick(logits, generated)   # the next token, still on the device
        while True:
            # One step ahead: the next forward is queued with the token still on the device,
            # then the token is read back, so a GPU computes while the host publishes it. If
            # the token ends the turn, that speculative step is cropped off again.
            room = self.policy.fits(self.cache_tokens, END_OF_TURN_TOKENS)
            ahead = None
            if room and len(generated) + 1 < self.max_new_tokens:
                ahead = self.backend.feed_token(pending)
            token = int(pending)
            generated.append(token)
            if self.streamer is not None:
                self.streamer.on_token(query_id, text.add(token).strip(), t)
            cancelled = bool(query_id) and self._is_cancelled(query_id)
            cut = (CANCELLED if cancelled else INTERRUPTED if self._interrupted.is_set()
                   else '' if token in self.template.stop_token_ids
                   else CONTEXT if not room else MAX_NEW_TOKENS if ahead is None else None)
            if cut is not None:
                if ahead is not None:
                    self.backend.crop(self.backend.length - 1)
                break
            self.fed_ids.append(token)
            self.max_cache_tokens = max(self.max_cache_tokens, self.cache_tokens)
            self.last_logits = logits = ahead[-1]
            pending = self.tokens.pick(logits, generated)
        self.enc.assistant_generated(generated)
        text = self._decode(generated)
        self.history.add_turn('assistant', text)
        if cancelled:
            self._forget_cancel(query_id)
        if empty_is_silence and not text and not query:
            return None
        return self._emit(Response(
            text=text, stream_time=t, frame_index=self.frame_index, query_id=query_id,
            latency_s=time.perf_counter() - start, token_ids=generated, query=query,
            interval_prob=interval_prob, cancelled=cancelled, cut=cut))

    def _emit(self, response):
        response.tag, response.frame_submitted = self.last_frame_tag, self.last_frame_submitted
        self.responses.append(response)
        self._outbox.append(response)
        if self.streamer is not None:
            self.streamer.on_response(response)
        return response

    def _decode(self, ids):
        return self.model.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def _rebuild(self):
        """Rebuild the cache from system prompt + recent turns + recent frames (context.py)."""
        self.load_context(*self.policy.plan(self.template, self.system_prompt, self.history))

    def prime(self, enc: DialogueEncoder, frames: Sequence[torch.Tensor],
              last_frame_time: float) -> None:
        """Start the stream at a point it reached: a history of ``frames`` in one prefill.

        ``enc`` holds the history's ids (a fresh ``template.encoder()`` after ``system``, then
        its frames and turns); what comes next is fed as after the frame at
        ``last_frame_time``. A benchmark measures cost an hour into a stream this way.
        """
        self.reset()
        for frame in frames:
            self.history.add_frame(frame)
        self.load_context(enc, frames)
        self.frame_index = len(frames) - 1
        self.last_frame_time = float(last_frame_time)

    def load_context(self, enc: DialogueEncoder, frames: Sequence[torch.Tensor]) -> None:
        """Start the cache over from a dialogue encoder's ids in one prefill.

        A context rebuild, or a benchmark's history; ``frames`` are the embeddings of its
        ``<v>`` runs in order.
        """
        self.backend.reset()
        self.fed_ids, self.fed_frames = [], []
        self.enc = enc
        embeds = torch.cat([f.reshape(-1, f.shape[-1]) for f in frames]) if frames else None
        self._feed(enc.take(), embeds)
