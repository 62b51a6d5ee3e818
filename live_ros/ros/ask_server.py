"""Questions for live_node: the ``ask`` service, the ``ask`` action and the ``query`` topic.

All three share one engine and one bounded question backlog. A question is normalised first
(zero-width and surrounding spaces gone; control characters refused with the reason), then
checked (empty, too long, node not active), then queued in the engine with its ``client``
(the request's; the topic's questions are anonymous), which refuses it at once when the backlog
is full or the wait too long (streaming/questions.py: clients take turns). The service
returns the query id at once; the answer follows on ``response``. The action waits for it
without a thread: its execute callback is a coroutine that awaits an rclpy Future the engine
completes from its decoder thread; words stream as feedback; a cancel reaches the engine at
once and the words said so far come back as the result.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from typing import Callable, Optional

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future
from std_msgs.msg import String

from live_ros.action import Ask as AskAction
from live_ros.ros.throttled_log import ThrottledLog
from live_ros.srv import Ask

#: Zero-width characters a question may carry from a keyboard or a speech engine.
ZERO_WIDTH = {'\u200b', '\u200c', '\u200d', '\u2060', '\ufeff'}


def normalise_question(text: str) -> tuple[str, Optional[str]]:
    """Return (question, None), or ('', why it is refused) for control characters."""
    text = ''.join(ch for ch in (text or '') if ch not in ZERO_WIDTH).strip()
    bad = sorted({f'U+{ord(ch):04X}' for ch in text
                  if unicodedata.category(ch) == 'Cc' and ch not in '\t\n'})
    if bad:
        return '', f'query holds control characters ({", ".join(bad)}): refused'
    return text, None


@dataclass
class _Goal:
    """An action goal waiting for its answer; filled from the engine's decoder thread."""

    handle: object
    future: Future
    text: str = ''


class AskServer:
    """Serve one camera's questions; ``submit(text)`` queues one: (query_id or 0, message).

    ``prefix`` ('front/' for a camera named front, '' for the one stream) goes before the
    names: front/ask, front/query.
    """

    def __init__(self, node, submit: Callable[[str, str], tuple[int, str]],
                 cancel: Callable[[int], bool], problem: Callable[[str], Optional[str]],
                 log: ThrottledLog, callback_group=None, prefix: str = ''):
        self.node = node
        self.log = log   # refusals, failed feedback: once per kind a period
        self._submit = submit
        self._cancel = cancel
        self._problem = problem
        self._goals: dict[int, _Goal] = {}
        self._lock = threading.Lock()
        self.service = node.create_service(Ask, prefix + 'ask', self.on_ask,
                                           callback_group=callback_group)
        self.topic = node.create_subscription(String, prefix + 'query', self.on_query, 10,
                                              callback_group=callback_group)
        # Same name as the service (actions live in their own namespace).
        self.action = ActionServer(
            node, AskAction, prefix + 'ask', execute_callback=self.execute,
            goal_callback=self.on_goal, cancel_callback=self.on_cancel,
            callback_group=callback_group)

    # -- requests ----------------------------------------------------------------------------
    def take(self, raw: str, client: str = '') -> tuple[int, str]:
        """Normalise, check and queue a question: (query_id, message) or (0, why not)."""
        text, why = normalise_question(raw)
        why = why or self._problem(text)
        if why:
            return 0, why
        return self._submit(text, client.strip())

    def on_ask(self, request, response):
        """Take a question from the ask service; the answer follows on the response topic."""
        response.query_id, response.message = self.take(request.query, request.client)
        response.accepted = response.query_id != 0
        if response.accepted:
            self.node.get_logger().info(f'query {response.query_id}: {request.query.strip()!r}')
        else:   # the caller has the reason; a flood of them is logged throttled
            self.log.warn('ask refused', response.message)
        return response

    def on_query(self, msg) -> None:
        """Take a question from a voice pipeline's text topic; refusals are logged only."""
        query_id, message = self.take(msg.data)
        if query_id:
            self.node.get_logger().info(f'query {query_id} (topic): {msg.data.strip()!r}')
        else:
            self.log.warn('query refused', message)

    # -- the action --------------------------------------------------------------------------
    def on_goal(self, request) -> GoalResponse:
        """Accept a goal the node can take now (the engine still checks its backlog)."""
        text, why = normalise_question(request.query)
        why = why or self._problem(text)
        if why:
            self.log.warn('ask goal rejected', why)
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def on_cancel(self, handle) -> CancelResponse:
        """Take every cancel and pass it to the engine at once."""
        with self._lock:
            query_id = next((q for q, g in self._goals.items() if g.handle is handle), None)
        if query_id is not None:
            self._cancel(query_id)
        return CancelResponse.ACCEPT

    async def execute(self, handle):
        """Queue the question, await the answer (feedback on the way), return the result."""
        result = AskAction.Result()
        goal = _Goal(handle, Future(executor=self.node.executor))
        with self._lock:   # registered before the engine can answer
            result.query_id, message = self.take(handle.request.query, handle.request.client)
            if result.query_id:
                self._goals[result.query_id] = goal
        if not result.query_id:
            result.message = message
            handle.abort()
            return result
        self.node.get_logger().info(
            f'query {result.query_id} (action): {handle.request.query.strip()!r}')
        if handle.is_cancel_requested:   # cancelled before it was queued
            self._cancel(result.query_id)
        response = await goal.future
        result.text = response.text if response is not None else goal.text
        result.stream_time = float(response.stream_time) if response is not None else 0.0
        if response is None:
            result.message = 'no answer: the model was unloaded'
            handle.abort()
        elif response.cancelled and handle.is_cancel_requested:
            result.message = 'cancelled'
            handle.canceled()
        elif response.cancelled:
            result.message = f'no full answer: {response.cut or "cancelled"}'
            handle.abort()
        else:
            handle.succeed()
        return result

    # -- from the engine (decoder thread) -------------------------------------------------
    def feedback(self, query_id: int, text: str) -> None:
        """Send the words added to an answer as action feedback."""
        with self._lock:
            goal = self._goals.get(query_id)
        if goal is None:
            return
        # Re-decoding may revise earlier characters (byte-level tokens): then send it all.
        delta = text[len(goal.text):] if text.startswith(goal.text) else text
        goal.text = text
        try:
            goal.handle.publish_feedback(AskAction.Feedback(delta=delta, text=text))
        except Exception as exc:   # the goal or the context went away meanwhile
            if rclpy.ok(context=self.node.context):
                self.log.warn('ask feedback', f'{type(exc).__name__}: {exc}')

    def complete(self, query_id: int, response) -> None:
        """Finish the goal of a query with its Response (None: it will never come)."""
        with self._lock:
            goal = self._goals.pop(query_id, None)
        if goal is not None and not goal.future.done():
            goal.future.set_result(response)
            executor = self.node.executor
            if executor is not None and rclpy.ok(context=self.node.context):
                executor.wake()

    def abandon_all(self) -> None:
        """End every waiting goal: the model is gone and no answer will come."""
        with self._lock:
            query_ids = list(self._goals)
        for query_id in query_ids:
            self.complete(query_id, None)
