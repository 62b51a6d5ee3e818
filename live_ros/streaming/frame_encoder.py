"""The fast half of the pipeline: frames wait, the vision tower encodes them in batches.

Frames wait in a bounded buffer (``queue_size``); when dropping, a new frame evicts the oldest
(counted in ``frames_dropped``), else submit waits for room. The encoder thread takes what
waits (up to ``batch_size``), encodes it on the vision tower (its own CUDA stream on a GPU,
in turn with the other cameras of the model) and puts each frame's embeddings into the FIFO
the decoder reads, with its stamp, tag, submit time and generation (a reset starts a new one:
frames of the old stream are discarded wherever they are).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque

import torch

from live_ros.streaming.engine_stats import EngineStats
from live_ros.streaming.fair_lock import model_turns


class FrameEncoder:
    """Buffer and encode one stream's frames into ``output`` (a bounded queue.Queue)."""

    def __init__(self, model, output: queue.Queue, stats: EngineStats, queue_size: int,
                 batch_size: int, drop_frames: bool):
        self.model, self.output, self.stats = model, output, stats
        self.queue_size, self.batch_size, self.drop_frames = queue_size, batch_size, drop_frames
        self.generation = 0
        self.closed = True   # until open(): a configured, inactive lifecycle node
        self._raw = deque()  # (rgb, stamp, tag, submit_time, generation)
        self._cond = threading.Condition()
        self._vision_stream = None   # CUDA only, made by the encoder thread

    @property
    def waiting(self) -> int:
        """Frames submitted and not taken by the encoder yet."""
        with self._cond:
            return len(self._raw)

    def submit(self, rgb, stamp: float, tag) -> None:
        """Queue a frame; never blocks when dropping. RuntimeError when closed."""
        with self._cond:
            if self.closed:
                raise RuntimeError('pipeline is closed')
            if not self.drop_frames:
                while len(self._raw) >= self.queue_size and not self.closed:
                    self._cond.wait(0.1)
            elif len(self._raw) >= self.queue_size:
                self._raw.popleft()
                self.stats.add('frames_dropped')
            self._raw.append((rgb, stamp, tag, time.perf_counter(), self.generation))
            self.stats.add('frames_received')
            self.stats.note_backlog()
            self._cond.notify_all()

    def open(self) -> None:
        """Take frames again (the thread is started by the pipeline)."""
        with self._cond:
            self.closed = False

    def close(self) -> int:
        """Refuse frames and end the thread at its next wait; return the frames discarded."""
        with self._cond:
            self.closed = True
            return self._clear()

    def new_stream(self) -> int:
        """Forget the frames of the stream so far (a reset); return how many were waiting."""
        with self._cond:
            self.generation += 1
            return self._clear()

    def _clear(self):
        discarded = len(self._raw)
        self._raw.clear()
        self._cond.notify_all()
        return discarded

    def run(self) -> None:
        """Run the encoder thread: batches in, embeddings out, until closed."""
        while True:
            with self._cond:
                while not self._raw and not self.closed:
                    self._cond.wait()
                if self.closed:
                    return
                batch = [self._raw.popleft()
                         for _ in range(min(self.batch_size, len(self._raw)))]
                self._cond.notify_all()
            try:
                embeds = self._encode([item[0] for item in batch])
            except Exception as exc:  # a bad frame must not kill the stream
                self.stats.error('encode', exc)
                self.stats.add('frames_discarded', len(batch))
                continue
            self.stats.add('encode_batches')
            for (_, stamp, tag, submitted, gen), frame_embeds in zip(batch, embeds):
                self.stats.add('frames_encoded')
                while not self.closed:
                    try:
                        self.output.put((frame_embeds, stamp, tag, submitted, gen), timeout=0.1)
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
