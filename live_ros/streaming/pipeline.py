"""StreamPipeline: fast encoding and slow decoding in parallel, joined by a bounded FIFO.

    submit_frame -> [unencoded frames, <= queue_size] -> encoder thread (batches what waits)
                 -> [encoded FIFO, <= queue_size] -> decoder thread (StreamingSession)

Drop policy (frame_encoder.py): when decoding falls behind, the FIFO fills, the encoder
waits, and a new frame evicts the **oldest unencoded frame** (``frames_dropped``): at most
``2 * queue_size + batch_size`` frames ever wait, the newest kept. Bounding frames is not
bounding seconds, so the decoder also skips an encoded frame more than ``max_frame_age_s``
of stream time behind the newest received while a newer one waits (``frames_stale``); the
newest frame is always decoded. With ``drop_frames=False`` submit_frame blocks instead and
nothing is skipped (offline runs that must see every frame).

Questions wait in a bounded backlog (questions.py: refused at once with the reason, or
delivered as cut ``expired`` when they cannot start within ``max_query_wait``) and go to the
session in the decoder thread, ordered with frames by stamp (a query at t is answered after
the last frame at or before t; after ``idle_answer_s`` without a frame, at once). On a live
stream (``drop_frames``) the session holds one at a time, and after a response of T seconds
(an answer or the model's own words) the frames get T seconds and at least one frame before
the next question: a question flood gets at most half of the decoder. ``reset`` and
``cancel_query`` act at once: the answer being decoded ends at its next token, and every
question they drop is delivered as a cancelled Response.

What comes out goes to one ResponseStreamer (streamer.py), installed once: the pipeline is
the session's streamer and hands everything on. Each frame's ``tag`` (the node's image
header) and submit time travel with it to the Response that follows it.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterator

import torch

from live_ros.streaming.engine_stats import EngineStats
from live_ros.streaming.frame_encoder import FrameEncoder
from live_ros.streaming.questions import QueryBacklogFull, QuestionBacklog
from live_ros.streaming.response import CANCELLED, EXPIRED, INTERRUPTED, Response
from live_ros.streaming.session import StreamingSession
from live_ros.streaming.streamer import as_streamer, ResponseStreamer

_STOP = object()


class StreamPipeline(ResponseStreamer):
    """Threaded streaming engine around a StreamingSession (its streamer)."""

    def __init__(self, model, session: StreamingSession | None = None, queue_size: int = 8,
                 on_response=None, on_token=None, batch_size: int = 4,
                 drop_frames: bool = True, idle_answer_s: float = 1.0,
                 max_frame_age_s: float = 2.0, start: bool = True,
                 streamer: ResponseStreamer | None = None, max_queries: int | None = None,
                 query_ids: Iterator[int] | None = None, max_query_wait: float | None = None):
        self.model = model
        self.session = session if session is not None else StreamingSession(model)
        self.queue_size = max(1, int(queue_size))
        self.batch_size = max(1, int(batch_size))
        self.drop_frames = drop_frames
        self.idle_answer_s = idle_answer_s
        self.max_frame_age_s = max_frame_age_s
        self.streamer = as_streamer(streamer, on_token, on_response)
        self.session.attach(self)
        self._encoded = queue.Queue(maxsize=self.queue_size)
        # Ids never repeat (a client pairs answers by id): a node passes one counter to every
        # engine it builds, so they stay unique across cleanup and configure.
        self.questions = QuestionBacklog(max_queries, query_ids, max_wait=max_query_wait,
                                         frames_turn=drop_frames)
        self._settings = {}       # configure(): applied by the decoder thread
        self._settings_lock = threading.Lock()
        self._session_lock = threading.Lock()
        self._stats = EngineStats()
        self._frames = FrameEncoder(model, self._encoded, self._stats, self.queue_size,
                                    self.batch_size, drop_frames)
        self._newest_stamp = None
        self._speech = None       # this step's responses: first, last token time, any answer
        self._frame_mark = None   # the session's frame index when this frame step began
        self._last_activity = time.monotonic()
        self._encoder = self._decoder = None
        if start:   # else a configured, inactive lifecycle node: start() later
            self.start()

    @classmethod
    def for_model(cls, model, response_threshold: float | None = None,
                  max_new_tokens: int | None = None, context_budget: int | None = None,
                  rows=None, **options) -> 'StreamPipeline':
        """Build a stream of a loaded model: its own session (KV cache), the model shared.

        Pipelines of one model (a node's cameras) take turns at it (fair_lock.py); with the
        cameras' ``rows`` (camera_rows.py) their waiting steps share forwards. ``options``:
        __init__'s.
        """
        session = StreamingSession(model, response_threshold=response_threshold,
                                   max_new_tokens=max_new_tokens, context_budget=context_budget,
                                   rows=rows)
        return cls(model, session, **options)

    def start(self) -> None:
        """Start the encoder and decoder threads; after close() the stream goes on from there.

        The session keeps its context and the query ids keep counting, so a paused node (a
        lifecycle deactivate, then activate) answers as if the camera had only gone quiet.
        Questions still queued at close() are answered once the threads run again.
        """
        if self.running:
            return
        self._frames.open()
        stale = _drain(self._encoded)   # a frame left behind by close(), or its stop marker
        self._stats.add('frames_discarded', stale)
        self.session.resume()
        self._last_activity = time.monotonic()
        self._encoder = threading.Thread(target=self._frames.run, name='live-encoder',
                                         daemon=True)
        self._decoder = threading.Thread(target=self._decode_loop, name='live-decoder',
                                         daemon=True)
        self._encoder.start()
        self._decoder.start()

    @property
    def running(self) -> bool:
        """True while the engine threads run (between start() and close())."""
        return any(thread is not None and thread.is_alive()
                   for thread in (self._encoder, self._decoder))

    # -- producer side ---------------------------------------------------------------------
    def submit_frame(self, rgb, stamp: float, tag=None) -> None:
        """Queue an RGB uint8 HxWx3 frame at stream time ``stamp`` (never blocks when dropping).

        ``tag`` comes back on every Response that follows this frame.
        """
        stamp = float(stamp)
        self._expire_questions()   # on time even while the decoder is busy answering
        self._frames.submit(rgb, stamp, tag)
        self._last_activity = time.monotonic()
        self._newest_stamp = stamp

    def submit_query(self, text: str, stamp: float, client: str = '') -> int:
        """Queue a question of ``client`` at stream time ``stamp``; return its query id.

        Raises QueryBacklogFull (questions.py), with the reason, when ``max_queries`` wait or
        the answers ahead would take longer than ``max_query_wait``.
        """
        try:
            query_id = self.questions.submit(text, stamp, client)
        except QueryBacklogFull:
            self._stats.add('queries_refused')
            raise
        self._stats.add('queries_received')
        return query_id

    @property
    def queries_waiting(self) -> int:
        """Questions submitted and not answered yet."""
        return self.questions.waiting

    def cancel_query(self, query_id: int) -> bool:
        """Give up on a question; False if it is answered already.

        Never blocks: a question still queued here is delivered as cancelled at once; one the
        session holds or is answering ends at its next token (StreamingSession.cancel), and
        is then delivered with ``cancelled`` set.
        """
        pending, queued = self.questions.withdraw(query_id)
        if queued is not None:
            self._deliver_cancelled(queued.query_id, queued.text, queued.stamp)
        elif pending:
            self.session.cancel(query_id)
        return pending

    def configure(self, response_threshold: float | None = None,
                  max_new_tokens: int | None = None) -> None:
        """Change decoding settings at runtime; the decoder thread applies them between steps."""
        changes = {k: v for k, v in (('response_threshold', response_threshold),
                                     ('max_new_tokens', max_new_tokens)) if v is not None}
        with self._settings_lock:
            self._settings.update(changes)
        if not self.running:
            self._apply_settings()

    def reset(self) -> None:
        """Drop everything queued and start a new stream (returns when the cache is empty).

        Immediate: the answer being decoded ends at its next token; every question dropped
        (queued, or held by the session) is delivered as cancelled.
        """
        self.session.interrupt()
        with self._session_lock:
            discarded = self._frames.new_stream() + _drain(self._encoded)
            dropped = [(q.query_id, q.text, q.stamp) for q in self.questions.drain()]
            dropped += [(query_id, text, t) for t, query_id, text in self.session.queries]
            self._stats.add('frames_discarded', discarded)
            self.session.reset()
            self._newest_stamp = None
            self.session.resume()
        for query_id, text, t in dropped:
            self._deliver_cancelled(query_id, text, t, INTERRUPTED)

    def stats(self) -> dict:
        """Counters for diagnostics (see ARCHITECTURE.md, streaming contract)."""
        return {**self._stats.snapshot(), 'cache_tokens': self.session.cache_tokens,
                'context_rebuilds': self.session.rebuilds, 'backlog': self._stats.backlog(),
                'device': str(self.model.device)}

    def close(self, timeout: float = 5.0) -> bool:
        """Stop both threads and join them (frames still queued are discarded).

        A response being decoded ends at its next token (StreamingSession.interrupt); queued
        questions stay for start().
        """
        self.session.interrupt()
        discarded = self._frames.close() + _drain(self._encoded)
        self._stats.add('frames_discarded', discarded)
        try:
            self._encoded.put_nowait(_STOP)
        except queue.Full:
            pass
        deadline = time.monotonic() + timeout
        for thread in (self._encoder, self._decoder):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        return not self.running

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every submitted frame and query has been decoded (tests, offline runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._stats.backlog() == 0 and self._encoded.unfinished_tasks == 0 \
                    and self.queries_waiting == 0:
                return True
            time.sleep(0.005)
        return False

    # -- threads ---------------------------------------------------------------------------
    def _decode_loop(self):
        while True:
            try:
                item = self._encoded.get(timeout=0.05)
            except queue.Empty:
                if self._frames.closed:   # the stop marker did not fit into a full queue
                    return
                item = None
            if item is _STOP:
                self._encoded.task_done()
                return
            with self._session_lock:
                self._apply_settings()
                self._take_query()   # answered at once when its time has come
                if item is not None:
                    self._last_activity = time.monotonic()
                    items = [item] + self._waiting_frames()
                    try:
                        self._decode(items)
                    finally:
                        for _ in items:
                            self._encoded.task_done()
                elif self.session.queries and self._idle():
                    self._guard('answer', self.session.flush_queries)
                self._spoke()

    def _waiting_frames(self):
        """Take the encoded frames queued behind the one just taken (a backlog), not waiting."""
        items = []
        while len(items) < self.queue_size:
            try:
                item = self._encoded.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:   # close() closed the encoder first: the loop ends at its next wait
                self._encoded.task_done()
                break
            items.append(item)
        return items

    def _decode(self, items):
        """Decode encoded frames, a backlog in one forward (StreamingSession.push_frames)."""
        frames, stamps, tags, submits = [], [], [], []
        for i, (embeds, stamp, tag, submitted, gen) in enumerate(items):
            newer_waiting = i + 1 < len(items) or not self._encoded.empty()
            if gen != self._frames.generation:
                self._stats.add('frames_discarded')
            elif newer_waiting and self._stale(stamp):
                self._stats.add('frames_dropped')
                self._stats.add('frames_stale')
            else:
                frames.append(embeds)
                stamps.append(stamp)
                tags.append(tag)
                submits.append(submitted)
        if not frames:
            return
        self._frame_mark = self.session.frame_index
        self._guard('decode', self.session.push_frames, frames, stamps, tags, submits)
        self._count_decoded()
        self._frame_mark = None
        self._stats.set(lag_s=time.perf_counter() - submits[-1],
                        stream_lag_s=(self._newest_stamp or stamps[-1]) - stamps[-1])

    def _take_query(self):
        """Hand the next question to the session, if it is the questions' turn.

        Live: one at a time (the session answers the ones it holds in a row at its next
        frame), not in the frames' turn unless no frame is coming.
        """
        self._expire_questions()
        busy = self.drop_frames and self.session.queries
        question = None if busy or (self.questions.frames_turn_now() and not self._idle()) \
            else self.questions.take()
        if question is None:
            return False
        self._guard('query', self.session.ask, question.text, question.stamp,
                    query_id=question.query_id, submitted=question.submitted)
        return True

    def _apply_settings(self):
        with self._settings_lock:
            settings, self._settings = self._settings, {}
        if 'response_threshold' in settings:
            self.session.response_threshold = float(settings['response_threshold'])
        if 'max_new_tokens' in settings:
            self.session.max_new_tokens = int(settings['max_new_tokens'])

    # -- the session's streamer ------------------------------------------------------------
    def on_token(self, query_id: int, text: str, stream_time: float) -> None:
        """Hand the growing text on (decoder thread); questions past their wait expire."""
        first, _, answered = self._speech or (time.monotonic(), 0.0, False)
        self._speech = (first, time.monotonic(), answered or bool(query_id))
        if query_id:
            self.questions.started(query_id)
        self._count_decoded()   # the frames before a response, counted before it is decoded
        self._expire_questions()
        self._hand_on('on_token', query_id, text, stream_time)

    def on_response(self, response: Response) -> None:
        """Count a finished response and hand it on (decoder thread)."""
        self.questions.answered(response.query_id)
        self._stats.add('responses')
        self._stats.set(last_latency_s=response.latency_s)
        self._hand_on('on_response', response)

    def _hand_on(self, what, *args):
        if self.streamer is not None:
            try:
                getattr(self.streamer, what)(*args)
            except Exception as exc:   # the streamer's fault must not stop the stream
                self._stats.error(what, exc)

    def _deliver_cancelled(self, query_id, text, t, cut=CANCELLED):
        """Deliver a question dropped before its answer as a cancelled Response."""
        self.on_response(Response(text='', stream_time=t, frame_index=self.session.frame_index,
                                  query_id=query_id, cancelled=True, query=text, cut=cut,
                                  tag=self.session.last_frame_tag))

    def _count_decoded(self):
        """Count the frames the session took in this frame step so far (decoder thread)."""
        if self._frame_mark is not None and self.session.frame_index > self._frame_mark:
            self._stats.add('frames_decoded', self.session.frame_index - self._frame_mark)
            self._frame_mark = self.session.frame_index
            self.questions.heard()

    def _spoke(self):
        """After a decoder step that spoke: the frames' turn, as long as the speech (live)."""
        if self._speech is not None:
            first, last, answered = self._speech
            self.questions.spoke(last - first, own=not answered)
            self._speech = None

    def _expire_questions(self):
        """Deliver the questions not started within max_query_wait as cut 'expired'."""
        for late in self.questions.expired():
            self._deliver_cancelled(late.query_id, late.text, late.stamp, EXPIRED)

    def _guard(self, where, fn, *args, **kwargs):
        try:
            with torch.no_grad():
                return fn(*args, **kwargs)
        except Exception as exc:   # logged and counted; the stream goes on
            self._stats.error(where, exc)

    def _stale(self, stamp):
        # Too far behind the camera (the caller checks a newer frame waits to take its place).
        newest, bound = self._newest_stamp, self.max_frame_age_s
        return self.drop_frames and None not in (newest, bound) and newest - stamp > bound

    def _idle(self):
        # Nothing is coming: no frame submitted or decoded lately and nothing queued.
        return (self._frames.waiting == 0 and self._encoded.empty()
                and time.monotonic() - self._last_activity > self.idle_answer_s)


def _drain(q):
    count = 0
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return count
        count += item is not _STOP
        q.task_done()
