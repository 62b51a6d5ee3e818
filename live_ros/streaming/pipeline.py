"""StreamPipeline: fast encoding and slow decoding in parallel, joined by a bounded FIFO.

    submit_frame -> [unencoded frames, <= queue_size] -> encoder thread (batches what waits)
                 -> [encoded FIFO, <= queue_size] -> decoder thread (StreamingSession)

Drop policy: when decoding falls behind, the encoded FIFO fills, the encoder waits, and the
unencoded buffer fills; a new frame then evicts the **oldest unencoded frame** (counted in
``frames_dropped``). So at most ``2 * queue_size + batch_size`` frames are ever waiting and the
lag stays bounded however slow the decoder is; the newest frames are the ones kept, which is
what a live assistant should look at. Bounding frames is not bounding seconds: a frame that
waits behind a long answer is old by the time it is decoded. So the decoder also skips an
encoded frame that is more than ``max_frame_age_s`` of stream time behind the newest frame
received, as long as a newer encoded frame is waiting (counted in ``frames_dropped`` and
``frames_stale``); the newest frame is always decoded. With ``drop_frames=False``
submit_frame blocks instead and nothing is skipped (offline runs that must see every frame).

Queries are handed to the session in the decoder thread, which orders them with frames by
timestamp (a query at t is answered after the last frame at or before t), one between two
frame steps, so a flood of questions and a busy camera share the decoder: neither starves.
At most ``max_queries`` wait (submit_query refuses more with the reason: QueryBacklogFull).
If no frame newer than a query arrives within ``idle_answer_s`` (a paused camera), the query
is answered anyway. ``reset`` and ``cancel_query`` act at once: the answer being decoded ends
at its next token, and every question they drop is delivered as a cancelled Response.

What comes out goes to one ResponseStreamer (streamer.py), installed once: the pipeline is
the session's streamer and hands everything on. Each frame's ``tag`` (the node's image
header) and submit time travel with it to the Response that follows it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Iterator

import torch

from live_ros.streaming.fair_lock import model_turns
from live_ros.streaming.questions import QueryBacklogFull, QuestionBacklog
from live_ros.streaming.session import CANCELLED, INTERRUPTED, Response, StreamingSession
from live_ros.streaming.streamer import as_streamer, ResponseStreamer

_STOP = object()


class ModelLoadError(RuntimeError):
    """The model cannot be loaded (StreamPipeline.load): the message says why."""


class StreamPipeline(ResponseStreamer):
    """Threaded streaming engine around a StreamingSession (its streamer)."""

    def __init__(self, model, session: StreamingSession | None = None, queue_size: int = 8,
                 on_response=None, on_token=None, batch_size: int = 4,
                 drop_frames: bool = True, idle_answer_s: float = 1.0,
                 max_frame_age_s: float = 2.0, start: bool = True,
                 streamer: ResponseStreamer | None = None, max_queries: int | None = None,
                 query_ids: Iterator[int] | None = None):
        self.model = model
        self.session = session if session is not None else StreamingSession(model)
        self.queue_size = max(1, int(queue_size))
        self.batch_size = max(1, int(batch_size))
        self.drop_frames = drop_frames
        self.idle_answer_s = idle_answer_s
        self.max_frame_age_s = max_frame_age_s
        self.streamer = as_streamer(streamer, on_token, on_response)
        self.session.attach(self)
        self._raw = deque()  # (rgb, stamp, tag, submit_time, generation)
        self._raw_cond = threading.Condition()
        self._encoded = queue.Queue(maxsize=self.queue_size)
        # Ids never repeat (a client pairs answers by id): a node passes one counter to every
        # engine it builds, so they stay unique across cleanup and configure.
        self.questions = QuestionBacklog(max_queries, query_ids)
        self._settings = {}       # configure(): applied by the decoder thread
        self._settings_lock = threading.Lock()
        self._session_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._generation = 0
        self._closed = False
        self._stats = dict(frames_received=0, frames_encoded=0, frames_dropped=0,
                           frames_decoded=0, frames_stale=0, queries_received=0,
                           queries_refused=0, responses=0, lag_s=0.0,
                           frames_discarded=0, stream_lag_s=0.0, max_backlog=0,
                           last_latency_s=None,
                           encode_batches=0, errors=0, last_error=None)
        self._newest_stamp = None
        self._last_activity = time.monotonic()
        self._encoder = self._decoder = None
        self._vision_stream = None   # CUDA only, made by the encoder thread
        if start:
            self.start()
        else:
            self._closed = True   # a configured, inactive lifecycle node: start() later

    @classmethod
    def load(cls, model_name: str, device: str = 'auto', engine: str = 'fast',
             **options) -> 'StreamPipeline':
        """Load a model by name and build its session and pipeline (``options``: for_model's).

        Raises ModelLoadError with one clear line (load_model).
        """
        return cls.for_model(load_model(model_name, device, engine), **options)

    @classmethod
    def for_model(cls, model, response_threshold: float | None = None,
                  max_new_tokens: int | None = None, context_budget: int | None = None,
                  **options) -> 'StreamPipeline':
        """A stream of a loaded model: its own session (KV cache), the model shared.

        Several pipelines of one model (the cameras of one node) take turns at it fairly
        (fair_lock.py); ``options``: __init__'s.
        """
        session = StreamingSession(model, response_threshold=response_threshold,
                                   max_new_tokens=max_new_tokens, context_budget=context_budget)
        return cls(model, session, **options)

    def start(self) -> None:
        """Start the encoder and decoder threads; after close() the stream goes on from there.

        The session keeps its context and the query ids keep counting, so a paused node (a
        lifecycle deactivate, then activate) answers as if the camera had only gone quiet.
        Questions still queued at close() are answered once the threads run again.
        """
        if self.running:
            return
        with self._raw_cond:
            self._closed = False
        stale = _drain(self._encoded)   # a frame left behind by close(), or its stop marker
        with self._stats_lock:
            self._stats['frames_discarded'] += stale
        self.session.resume()
        self._last_activity = time.monotonic()
        self._encoder = threading.Thread(target=self._encode_loop, name='live-encoder',
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
        with self._raw_cond:
            if self._closed:
                raise RuntimeError('pipeline is closed')
            if not self.drop_frames:
                while len(self._raw) >= self.queue_size and not self._closed:
                    self._raw_cond.wait(0.1)
            elif len(self._raw) >= self.queue_size:
                self._raw.popleft()
                self._bump('frames_dropped')
            self._raw.append((rgb, stamp, tag, time.perf_counter(), self._generation))
            self._last_activity = time.monotonic()
            self._bump('frames_received')
            self._newest_stamp = stamp
            self._note_backlog()
            self._raw_cond.notify_all()

    def submit_query(self, text: str, stamp: float) -> int:
        """Queue a question at stream time ``stamp``; return its query id.

        Raises QueryBacklogFull (questions.py), with the reason, when ``max_queries`` wait.
        """
        try:
            query_id = self.questions.submit(text, stamp)
        except QueryBacklogFull:
            self._bump('queries_refused')
            raise
        self._bump('queries_received')
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
            with self._raw_cond:
                self._generation += 1
                discarded = len(self._raw)
                self._raw.clear()
                self._raw_cond.notify_all()
            discarded += _drain(self._encoded)
            dropped = [(q.query_id, q.text, q.stamp) for q in self.questions.drain()]
            dropped += [(query_id, text, t) for t, query_id, text in self.session.queries]
            with self._stats_lock:
                self._stats['frames_discarded'] += discarded
            self.session.reset()
            self._newest_stamp = None
            self.session.resume()
        for query_id, text, t in dropped:
            self._deliver_cancelled(query_id, text, t, INTERRUPTED)

    def stats(self) -> dict:
        """Counters for diagnostics (see ARCHITECTURE.md, streaming contract)."""
        with self._stats_lock:
            out = dict(self._stats)
        out['cache_tokens'] = self.session.cache_tokens
        out['context_rebuilds'] = self.session.rebuilds
        out['backlog'] = self._backlog()
        out['device'] = str(self.model.device)
        return out

    def close(self, timeout: float = 5.0) -> bool:
        """Stop both threads and join them (frames still queued are discarded).

        A response being decoded ends at its next token (StreamingSession.interrupt); queued
        questions stay for start().
        """
        self.session.interrupt()
        with self._raw_cond:
            self._closed = True
            discarded = len(self._raw)
            self._raw.clear()
            self._raw_cond.notify_all()
        discarded += _drain(self._encoded)
        with self._stats_lock:
            self._stats['frames_discarded'] += discarded
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
            if self._backlog() == 0 and self._encoded.unfinished_tasks == 0 \
                    and self.queries_waiting == 0:
                return True
            time.sleep(0.005)
        return False

    # -- threads ---------------------------------------------------------------------------
    def _encode_loop(self):
        while True:
            with self._raw_cond:
                while not self._raw and not self._closed:
                    self._raw_cond.wait()
                if self._closed:
                    return
                batch = [self._raw.popleft()
                         for _ in range(min(self.batch_size, len(self._raw)))]
                self._raw_cond.notify_all()
            try:
                embeds = self._encode([item[0] for item in batch])
            except Exception as exc:  # a bad frame must not kill the stream
                self._error('encode', exc)
                with self._stats_lock:
                    self._stats['frames_discarded'] += len(batch)
                continue
            self._bump('encode_batches')
            for (_, stamp, tag, submitted, gen), frame_embeds in zip(batch, embeds):
                self._bump('frames_encoded')
                while not self._closed:
                    try:
                        self._encoded.put((frame_embeds, stamp, tag, submitted, gen),
                                          timeout=0.1)
                        break
                    except queue.Full:
                        continue

    def _encode(self, images):
        """Run the vision tower on its own CUDA stream, so it overlaps the LLM's kernels.

        The decoder thread launches on the default stream; this thread waits for its own
        stream before handing the embeddings over, and marks them used by the default stream
        so the allocator does not reuse their memory early. On a CPU: a plain call.
        """
        device = self.model.device
        turns = model_turns(self.model, 'vision')   # the cameras of one model take turns
        if device.type != 'cuda':
            with turns:
                return self.model.encode_images(images)
        if self._vision_stream is None:
            self._vision_stream = torch.cuda.Stream(device=device)
        with turns, torch.cuda.stream(self._vision_stream):
            embeds = self.model.encode_images(images)
            self._vision_stream.synchronize()
        embeds.record_stream(torch.cuda.default_stream(device))
        return embeds

    def _decode_loop(self):
        while True:
            try:
                item = self._encoded.get(timeout=0.05)
            except queue.Empty:
                if self._closed:   # the stop marker did not fit into a full queue
                    return
                item = None
            if item is _STOP:
                self._encoded.task_done()
                return
            with self._session_lock:
                self._apply_settings()
                self._take_query()
                if item is None:
                    if self.session.queries and self._idle():
                        self._guard('answer', self.session.flush_queries)
                    continue
                self._last_activity = time.monotonic()
                items = [item] + self._waiting_frames()
                try:
                    self._decode(items)
                finally:
                    for _ in items:
                        self._encoded.task_done()

    def _waiting_frames(self):
        """Take the encoded frames queued behind the one just taken (a backlog), not waiting."""
        items = []
        while len(items) < self.queue_size:
            try:
                item = self._encoded.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:   # close() set _closed first: the loop ends at its next wait
                self._encoded.task_done()
                break
            items.append(item)
        return items

    def _decode(self, items):
        """Decode encoded frames, a backlog in one forward (StreamingSession.push_frames)."""
        frames, stamps, tags, submits = [], [], [], []
        for i, (embeds, stamp, tag, submitted, gen) in enumerate(items):
            newer_waiting = i + 1 < len(items) or not self._encoded.empty()
            if gen != self._generation:
                self._bump('frames_discarded')
            elif newer_waiting and self._stale(stamp):
                with self._stats_lock:
                    self._stats['frames_dropped'] += 1
                    self._stats['frames_stale'] += 1
            else:
                frames.append(embeds)
                stamps.append(stamp)
                tags.append(tag)
                submits.append(submitted)
        if not frames:
            return
        self._guard('decode', self.session.push_frames, frames, stamps, tags, submits)
        with self._stats_lock:
            self._stats['frames_decoded'] += len(frames)
            self._stats['lag_s'] = time.perf_counter() - submits[-1]
            self._stats['stream_lag_s'] = (self._newest_stamp or stamps[-1]) - stamps[-1]

    def _take_query(self):
        """Hand the oldest waiting question to the session (one per decoder step)."""
        question = self.questions.take()
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
        """Hand the growing text on (decoder thread)."""
        if self.streamer is not None:
            try:
                self.streamer.on_token(query_id, text, stream_time)
            except Exception as exc:
                self._error('on_token', exc)

    def on_response(self, response: Response) -> None:
        """Count a finished response and hand it on (decoder thread)."""
        self.questions.answered(response.query_id)
        with self._stats_lock:
            self._stats['responses'] += 1
            self._stats['last_latency_s'] = response.latency_s
        if self.streamer is not None:
            try:
                self.streamer.on_response(response)
            except Exception as exc:
                self._error('on_response', exc)

    # -- helpers ---------------------------------------------------------------------------
    def _deliver_cancelled(self, query_id, text, t, cut=CANCELLED):
        """Deliver a question dropped before its answer as a cancelled Response."""
        self.on_response(Response(text='', stream_time=t, frame_index=self.session.frame_index,
                                  query_id=query_id, cancelled=True, query=text, cut=cut))

    def _guard(self, where, fn, *args, **kwargs):
        try:
            with torch.no_grad():
                return fn(*args, **kwargs)
        except Exception as exc:
            self._error(where, exc)
            return None

    def _error(self, where, exc):
        with self._stats_lock:
            self._stats['errors'] += 1
            self._stats['last_error'] = f'{where}: {type(exc).__name__}: {exc}'

    def _bump(self, key):
        with self._stats_lock:
            self._stats[key] += 1

    def _backlog(self):
        with self._stats_lock:
            s = self._stats
            return (s['frames_received'] - s['frames_dropped'] - s['frames_decoded']
                    - s['frames_discarded'])

    def _stale(self, stamp):
        # Too far behind the camera (the caller checks a newer frame waits to take its place).
        return (self.drop_frames and self.max_frame_age_s is not None
                and self._newest_stamp is not None
                and self._newest_stamp - stamp > self.max_frame_age_s)

    def _idle(self):
        # Nothing is coming: no frame submitted or decoded lately and nothing queued.
        with self._raw_cond:
            waiting = len(self._raw)
        return (waiting == 0 and self._encoded.empty()
                and time.monotonic() - self._last_activity > self.idle_answer_s)

    def _note_backlog(self):
        backlog = self._backlog()
        with self._stats_lock:
            self._stats['max_backlog'] = max(self._stats['max_backlog'], backlog)


def load_model(model_name: str, device: str = 'auto', engine: str = 'fast'):
    """Load a LiveModel for streaming; ModelLoadError says why not in one line.

    A CUDA device where torch sees none is refused before anything loads.
    """
    from live_ros.model.live_model import load_live_model
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ModelLoadError(f'device {device!r} asked for, but torch {torch.__version__} '
                             'sees no CUDA device here: use device cpu (or auto)')
    try:
        return load_live_model(model_name, device=device, engine=engine)
    except Exception as exc:
        raise ModelLoadError(f'cannot load model {model_name!r}: '
                             f'{type(exc).__name__}: {exc}') from exc


def _drain(q):
    count = 0
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return count
        count += item is not _STOP
        q.task_done()
