"""The question backlog between the askers (any thread) and the decoder thread.

Bounded: at most ``max_queries`` questions wait for their answers (submitted and not answered
yet), however they came (a service, an action, a topic); one more is refused at once with the
reason. With ``max_wait``, a question is also refused at once when the answers ahead of it
would take longer than that to come out (an estimate from the answers measured so far; a
question with none waiting is never refused for time), and one that cannot start in time any
more is given up (``expired``), so under a flood every question is answered soon or refused,
never kept waiting long.

Clients (a name the asker gives; '' is the anonymous client) take turns: the oldest question
of the client served longest ago goes next, and a client with no question waiting is let in
even when others fill ``max_queries`` (up to twice that in all), so one client's flood cannot
lock the others out.

The decoder takes one question at a time between frame steps, and on a live stream, after a
response of T seconds (an answer, or the model speaking on its own) the frames get T seconds
(at most half of ``max_wait``) and at least one frame before the next question
(``frames_turn``), so a flood of questions and a busy camera share the model; after the
model's own words and one frame, a question about to be given up goes first. Query ids never
repeat: give every backlog of a process the same id counter. Thread-safe.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections import deque
from typing import Callable, Iterator, NamedTuple


# A queued question is given up this much (and the time from hand-over to first words, as
# measured) before ``max_wait`` is over: the decoder looks a token step or a frame step
# apart, so the notice, or the first words of one handed over just in time, come out by then.
EXPIRY_SLACK_S = 0.15
# After the model's own words, a question this close to that bound goes before the frames.
YIELD_S = 0.3


class QueryBacklogFull(RuntimeError):
    """More questions wait than the engine takes (``max_queries``)."""


class Question(NamedTuple):
    """A question waiting for the decoder."""

    text: str
    stamp: float
    query_id: int
    submitted: float   # perf_counter when it was asked (its latency starts there)
    client: str = ''   # who asked ('' the anonymous client)


class QuestionBacklog:
    """Questions submitted and not answered yet; the not-yet-handed-over ones in turns."""

    def __init__(self, max_queries: int | None = None, query_ids: Iterator[int] | None = None,
                 max_wait: float | None = None, frames_turn: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.max_queries = max_queries
        self._clock = clock
        self.max_wait = max_wait or None   # seconds; None or 0: no limit
        self.frames_turn = frames_turn
        self._ids = query_ids if query_ids is not None else itertools.count(1)
        self._lock = threading.Lock()
        self._queued: deque[Question] = deque()   # not handed to the session yet
        self._pending: dict[int, str] = {}        # submitted, not answered yet: id -> client
        self._served: dict[str, int] = {}         # client -> its last turn (take)
        self._turn = 0
        self._started: dict[int, float] = {}      # being answered: query id -> first token
        self._taken: dict[int, float] = {}        # handed over: query id -> then
        self._prefill_s = 0.0                     # hand-over to first words (recent worst)
        self._answer_s = 0.0                      # an answer's length (mean of the last ones)
        self._late_s = 0.0                        # how much later answers start than estimated
        self._estimates: dict[int, tuple[float, float]] = {}   # query id -> (asked, estimate)
        self._frames_until = 0.0                  # the frames' turn ends then (monotonic)
        self._heard = True                        # a frame decoded since the frames' turn began
        self._own = False                         # the turn follows the model's own words only

    def submit(self, text: str, stamp: float, client: str = '') -> int:
        """Queue a question of ``client``; return its id, or raise QueryBacklogFull with why.

        At most ``max_queries`` wait, but a client with none waiting may add one (up to twice
        that in all), so a flood from one client cannot lock the others out.
        """
        with self._lock:
            now = self._clock()
            askers = collections.Counter(self._pending.values())
            total, own = len(self._pending), askers[client]
            limit = self.max_queries
            if limit is not None and own >= limit:
                raise QueryBacklogFull(f'{own} questions of this client are waiting already '
                                       f'(at most {limit}): ask again after an answer')
            if limit is not None and own and total >= limit:
                raise QueryBacklogFull(f'{total} questions are waiting already (at most '
                                       f'{limit}): ask again after an answer')
            if limit is not None and total >= 2 * limit:
                raise QueryBacklogFull(f'{total} questions of several clients are waiting '
                                       f'already (at most {2 * limit}): ask again later')
            wait = self._expected_wait(now, client)
            if self.max_wait is not None and self._pending and wait > self._start_by():
                ahead = (f'about {wait:.1f} s' if wait != float('inf')
                         else 'an unknown time (no answer measured yet)')
                raise QueryBacklogFull(
                    f'busy: the answers ahead need {ahead} (max_query_wait '
                    f'{self.max_wait:g} s): ask again in a moment')
            query_id = next(self._ids)
            self._pending[query_id] = client
            self._estimates[query_id] = (now, wait)
            self._queued.append(Question(text, float(stamp), query_id, time.perf_counter(),
                                         client))
        return query_id

    def take(self) -> Question | None:
        """Hand a question over (the decoder thread), or None: clients take turns.

        The oldest question of the client served longest ago (never: first) goes next.
        """
        with self._lock:
            if not self._queued:
                return None
            question = min(self._queued, key=lambda q: self._served.get(q.client, -1))
            self._queued.remove(question)
            self._taken[question.query_id] = self._clock()
            self._turn += 1
            self._served[question.client] = self._turn
            waiting = set(self._pending.values())   # forget clients with nothing waiting
            self._served = {c: t for c, t in self._served.items() if c in waiting}
            return question

    def expired(self) -> list[Question]:
        """Take back the questions not handed over within ``max_wait`` of being asked.

        The estimate at submit is only an estimate (the model may start speaking on its own);
        this makes the bound hold: a question starts within ``max_wait``, or is given up
        early enough (``EXPIRY_SLACK_S`` and the measured hand-over to first words) that the
        notice, or the first words of one handed over just in time, are out by then.
        """
        if self.max_wait is None:
            return []
        with self._lock:
            now = self._clock()
            bound = self._start_by()
            late = [q for q in self._queued
                    if now - self._estimates.get(q.query_id, (now, 0.0))[0] > bound]
            for question in late:   # later than estimated by at least this much: learn it
                self._queued.remove(question)
                self._learn_late(now, question.query_id)
        return late

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
        """Take every queued question back (a reset); the frames' turn ends."""
        with self._lock:
            queued, self._queued = list(self._queued), deque()
            self._started.clear()
            self._taken.clear()
            self._estimates.clear()
            self._frames_until, self._heard = 0.0, True
        return queued

    def started(self, query_id: int) -> None:
        """Note the first token of a question's answer (the decoder thread)."""
        with self._lock:
            now = self._clock()
            self._started.setdefault(query_id, now)
            self._learn_late(now, query_id)
            taken = self._taken.pop(query_id, None)
            if taken is not None:
                self._prefill_s = max(now - taken, 0.8 * self._prefill_s)   # a recent worst

    def _start_by(self) -> float:
        # A question must be handed over this long after it was asked for its first words (or
        # the notice that it was given up) to be out within max_wait; at least half of it, so
        # that one slow start cannot give every later question up (and nothing is measured).
        return max(self.max_wait / 2, self.max_wait - EXPIRY_SLACK_S - self._prefill_s)

    def _learn_late(self, now: float, query_id: int) -> None:
        # How much later than estimated a question started (or was given up): a running mean.
        asked, estimate = self._estimates.pop(query_id, (None, None))
        if asked is not None and estimate != float('inf'):
            self._late_s = 0.7 * self._late_s + 0.3 * max(0.0, now - asked - estimate)

    def answered(self, query_id: int) -> None:
        """Note that a question got its (possibly cancelled) answer."""
        with self._lock:
            self._pending.pop(query_id, None)
            self._estimates.pop(query_id, None)
            self._taken.pop(query_id, None)
            start = self._started.pop(query_id, None)
            if start is not None:
                took = self._clock() - start
                self._answer_s = took if not self._answer_s else 0.7 * self._answer_s + 0.3 * took

    def spoke(self, seconds: float, own: bool = False) -> None:
        """Note that the decoder spoke for ``seconds`` (answers, or ``own`` words only).

        On a live stream the frames then get as long before the next question is taken (at
        most half of ``max_wait``: a question asked now must still be able to start in time),
        and at least one frame. After the model's own words and that frame, a question about
        to be given up goes first: the frames hold back answers, not a question the model
        talked over, and two responses never run back to back.
        """
        if self.max_wait is not None:
            seconds = min(seconds, self.max_wait / 2)
        if self.frames_turn and seconds > 0:
            with self._lock:
                self._frames_until = max(self._frames_until, self._clock() + seconds)
                self._heard, self._own = False, own

    def heard(self) -> None:
        """Note that the decoder took a frame."""
        self._heard = True

    def frames_turn_now(self) -> bool:
        """Whether it is the frames' turn (after a response), no question taken."""
        with self._lock:
            now = self._clock()
            if not self._heard:                   # every turn holds one frame at least
                return True
            turn = now < self._frames_until
            if turn and self._own and self._queued and self.max_wait is not None:
                asked = min(self._estimates.get(q.query_id, (now, 0.0))[0] for q in self._queued)
                return now - asked < self._start_by() - YIELD_S
            return turn

    def _expected_wait(self, now: float, client: str) -> float:
        # Until a question asked now would start: the frames' turn left, then per question
        # ahead an answer (less what the one being answered has done) and the frames' turn
        # after it, and how late answers started against this estimate so far (the model's
        # own words in progress, the prompt, a busy machine). Ahead of a client's question:
        # the ones handed over, its own queued ones, and of every other client's queued ones
        # as many as get a turn before it (take(): one per turn of its own, and one more if
        # that client was served before this one).
        # No answer measured yet: 0 with none ahead (a first question is never refused for
        # time), unknown with one ahead.
        if not self._answer_s and self._pending:
            return float('inf')
        turn = min(self._answer_s, self.max_wait / 2) if self.max_wait else self._answer_s
        per_question = self._answer_s + (turn if self.frames_turn else 0.0)
        done = sum(min(self._answer_s, now - start) for start in self._started.values())
        queued = collections.Counter(q.client for q in self._queued)
        own, mine = queued[client], self._served.get(client, -1)
        ahead = (len(self._pending) - len(self._queued) + own   # handed over, its own queued
                 + sum(min(n, own + (self._served.get(asker, -1) <= mine))
                       for asker, n in queued.items() if asker != client))
        return (max(0.0, self._frames_until - now) + ahead * per_question - done
                + self._late_s)

    @property
    def waiting(self) -> int:
        """Questions submitted and not answered yet."""
        with self._lock:
            return len(self._pending)
