"""The question backlog between the askers (any thread) and the decoder thread.

Bounded: at most ``max_queries`` questions wait for their answers (submitted and not answered
yet), however they came (a service, an action, a topic); one more is refused at once with the
reason. The decoder takes one question at a time between frame steps, so a flood of
questions and a busy camera share it. Query ids never repeat: give every backlog of a process
the same id counter. Thread-safe.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import Iterator, NamedTuple


class QueryBacklogFull(RuntimeError):
    """More questions wait than the engine takes (``max_queries``)."""


class Question(NamedTuple):
    """A question waiting for the decoder."""

    text: str
    stamp: float
    query_id: int
    submitted: float   # perf_counter when it was asked (its latency starts there)


class QuestionBacklog:
    """Questions submitted and not answered yet; the not-yet-handed-over ones in order."""

    def __init__(self, max_queries: int | None = None, query_ids: Iterator[int] | None = None):
        self.max_queries = max_queries
        self._ids = query_ids if query_ids is not None else itertools.count(1)
        self._lock = threading.Lock()
        self._queued: deque[Question] = deque()   # not handed to the session yet
        self._pending: set[int] = set()           # submitted, not answered yet

    def submit(self, text: str, stamp: float) -> int:
        """Queue a question; return its id, or raise QueryBacklogFull with the reason."""
        with self._lock:
            if self.max_queries is not None and len(self._pending) >= self.max_queries:
                raise QueryBacklogFull(
                    f'{len(self._pending)} questions are waiting already (at most '
                    f'{self.max_queries}): ask again after an answer')
            query_id = next(self._ids)
            self._pending.add(query_id)
            self._queued.append(Question(text, float(stamp), query_id, time.perf_counter()))
        return query_id

    def take(self) -> Question | None:
        """Hand the oldest queued question over (the decoder thread), or None."""
        with self._lock:
            return self._queued.popleft() if self._queued else None

    def withdraw(self, query_id: int) -> tuple[bool, Question | None]:
        """Take a question back: (still pending, the queued Question if not handed over)."""
        with self._lock:
            if query_id not in self._pending:
                return False, None
            queued = next((q for q in self._queued if q.query_id == query_id), None)
            if queued is not None:
                self._queued.remove(queued)
            return True, queued

    def drain(self) -> list[Question]:
        """Take every queued question back (a reset)."""
        with self._lock:
            queued, self._queued = list(self._queued), deque()
        return queued

    def answered(self, query_id: int) -> None:
        """Note that a question got its (possibly cancelled) answer."""
        with self._lock:
            self._pending.discard(query_id)

    @property
    def waiting(self) -> int:
        """Questions submitted and not answered yet."""
        with self._lock:
            return len(self._pending)
