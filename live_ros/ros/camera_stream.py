"""One camera of live_node: its image input, its stream (session, KV cache), its answers.

A node serves one camera under today's names (``image``, ``response``, ``response_partial``,
``ask``, ``query``, ``reset``) or several, each under its name (``front/image``,
``front/response``, ``front/ask``, ...). Every camera has its own StreamPipeline (session,
KV cache, question backlog, stream clock, counters); the model is loaded once and shared.

    image -> CameraInput (stream clock, frame sampler, size check, RGB)
          -> StreamPipeline.submit_frame(rgb, stream time, tag=header)
          -> encoder thread -> FIFO -> decoder thread (StreamingSession, one KV cache)
          -> CameraStream.on_response (the engine's streamer) -> response topic
"""

from __future__ import annotations

import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from std_srvs.srv import Trigger

from live_ros.msg import Response
from live_ros.ros.ask_server import AskServer
from live_ros.ros.camera_input import CameraInput
from live_ros.ros.diagnostics import NodeCounts
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.ros.throttled_log import ThrottledLog
from live_ros.streaming.streamer import ResponseStreamer


class CameraStream(ResponseStreamer):
    """Wire one camera's topics and services to its engine (the engine's streamer)."""

    def __init__(self, node, name: str, requests):
        self.node = node
        self.name = name
        prefix = f'{name}/' if name else ''
        param = node.param
        logger = node.get_logger().get_child(name) if name else node.get_logger()
        self.counts = NodeCounts()
        self.bad_input = ThrottledLog(logger, param('log_throttle_period'))
        self.engine = None        # its StreamPipeline, from configure to cleanup
        self.response_pub = node.create_lifecycle_publisher(
            Response, prefix + 'response', RESPONSE_QOS)
        self.partial_pub = node.create_lifecycle_publisher(
            Response, prefix + 'response_partial', RESPONSE_QOS)
        self.camera = CameraInput(
            node, self.counts, self.bad_input, param('fps') or 2.0, param('max_stamp_jump'),
            param('max_image_pixels'), param('compressed'), param('image_reliability'),
            callback_group=MutuallyExclusiveCallbackGroup(), prefix=prefix)
        self.ask_server = AskServer(node, self.submit_query, self.cancel_query,
                                    node.query_problem, self.bad_input,
                                    callback_group=requests, prefix=prefix)
        self.reset_srv = node.create_service(Trigger, prefix + 'reset', self.on_reset,
                                             callback_group=requests)

    @property
    def label(self) -> str:
        """How logs and /diagnostics name this stream."""
        return f'camera {self.name}' if self.name else 'stream'

    def start(self) -> None:
        """Start the engine's threads and let images in."""
        self.engine.start()
        self.camera.engine = self.engine

    def stop(self, timeout: float) -> bool:
        """Ignore images and stop the engine's threads; the context and questions stay."""
        self.camera.engine = None
        return self.engine is None or bool(self.engine.close(timeout=timeout))

    def release(self, timeout: float) -> bool:
        """Stop and drop the engine; the next configure starts a new stream."""
        stopped = self.stop(timeout)
        self.engine = None
        self.ask_server.abandon_all()
        self.camera.reset()
        return stopped

    # ---------------------------------------------------------------- the engine's streamer --

    def on_response(self, response) -> None:
        """Publish a finished response, end its action goal (the engine's decoder thread)."""
        if response.text or response.cut not in ('', 'cancelled'):
            self._publish(self.response_pub, response.text, response, partial=False)
        if response.query_id:
            self.ask_server.complete(response.query_id, response)

    def on_token(self, query_id: int, text: str, stream_time: float) -> None:
        """Publish the growing text of a response while it is decoded (decoder thread)."""
        if self.node.param('publish_partial'):
            engine = self.engine
            tag = engine.session.last_frame_tag if engine is not None else None
            self._publish(self.partial_pub, text, None, partial=True, query_id=query_id,
                          stream_time=stream_time, tag=tag)
        if query_id:
            self.ask_server.feedback(query_id, text)

    def _publish(self, publisher, text, response, partial, query_id=0, stream_time=0.0,
                 tag=None):
        if response is not None:
            query_id, stream_time, tag = response.query_id, response.stream_time, response.tag
        msg = Response(text=text, stream_time=float(stream_time), query_id=int(query_id),
                       partial=partial, cut=getattr(response, 'cut', '') or '')
        if tag is not None:   # the image header the frame came with
            msg.header = tag
        try:
            publisher.publish(msg)
        except Exception as exc:  # the context is gone during shutdown: nothing to tell
            if rclpy.ok(context=self.node.context):
                self.bad_input.warn('publish failed', self.counts.error('publish', exc))

    # ---------------------------------------------------------------- requests --

    def submit_query(self, text: str, client: str = '') -> tuple[int, str]:
        """Queue a checked question in the engine: (query_id, message) or (0, why not)."""
        from live_ros.streaming.questions import QueryBacklogFull
        engine = self.engine
        if engine is None:
            return 0, f'node is {self.node.state}'
        try:
            query_id = engine.submit_query(text, self.camera.last_used or 0.0, client)
        except QueryBacklogFull as exc:
            return 0, str(exc)
        return query_id, (f'answer will be published on {self.response_pub.topic_name} '
                          f'with query_id {query_id}')

    def cancel_query(self, query_id: int) -> bool:
        """Stop a question now (queued: dropped; being answered: cut at its next token)."""
        engine = self.engine
        return engine is not None and engine.cancel_query(query_id)

    def reset(self) -> str | None:
        """Forget this camera's conversation and video so far, at once; None if no engine."""
        engine = self.engine
        if engine is None:
            return None
        before = engine.session.cache_tokens
        engine.reset()   # the answer being decoded is cut; dropped questions end cancelled
        self.camera.reset()
        self.counts.add('resets')
        return f'context cleared: cache {before} -> {engine.session.cache_tokens} tokens'

    def on_reset(self, request, response):
        """Serve reset: a new activity starts in front of this camera."""
        message = self.reset()
        response.success = message is not None
        response.message = message or f'node is {self.node.state}'
        if message:
            self.node.get_logger().info(f'{self.label}: {message}' if self.name else message)
        return response

    def engine_stats(self) -> dict:
        """Return the engine's counters ({} without an engine)."""
        engine = self.engine
        return dict(engine.stats(), queries_waiting=engine.queries_waiting) if engine else {}
