"""The streaming engine's counters, under the names /diagnostics publishes them.

Counted from three threads (the producer submitting frames and questions, the encoder, the
decoder), read from a fourth (diagnostics); one lock, held only to count.
"""

from __future__ import annotations

import threading

#: Counters a fresh engine starts from (ARCHITECTURE.md, streaming contract).
COUNTERS = dict(frames_received=0, frames_encoded=0, frames_dropped=0, frames_decoded=0,
                frames_stale=0, queries_received=0, queries_refused=0, responses=0, lag_s=0.0,
                frames_discarded=0, stream_lag_s=0.0, max_backlog=0, last_latency_s=None,
                encode_batches=0, errors=0, last_error=None)


class EngineStats:
    """Thread-safe counters of one StreamPipeline."""

    def __init__(self):
        self._lock = threading.Lock()
        self._values = dict(COUNTERS)

    def add(self, key: str, n: int = 1) -> None:
        """Count ``n`` more of ``key``."""
        with self._lock:
            self._values[key] += n

    def set(self, **values: float | None) -> None:
        """Set measured values (lags, latencies) together."""
        with self._lock:
            self._values.update(values)

    def error(self, where: str, exc: Exception) -> None:
        """Count an error caught in the engine; the last one is kept in words."""
        with self._lock:
            self._values['errors'] += 1
            self._values['last_error'] = f'{where}: {type(exc).__name__}: {exc}'

    def backlog(self) -> int:
        """Frames received and not yet decoded, dropped or discarded."""
        with self._lock:
            v = self._values
            return (v['frames_received'] - v['frames_dropped'] - v['frames_decoded']
                    - v['frames_discarded'])

    def note_backlog(self) -> None:
        """Keep the largest backlog seen."""
        backlog = self.backlog()
        with self._lock:
            self._values['max_backlog'] = max(self._values['max_backlog'], backlog)

    def snapshot(self) -> dict:
        """Return a copy of every counter."""
        with self._lock:
            return dict(self._values)
