"""live_node: the LIVE video assistant as a ROS 2 lifecycle node.

    ros2 run live_ros live_node --ros-args --params-file config/live.yaml -r image:=/camera/image

Lifecycle (managed node): ``configure`` loads the model, ``activate`` starts the engine's
threads and the stream, ``deactivate`` pauses it (the context is kept; an answer being decoded
ends at its next token), ``cleanup`` frees the model, ``shutdown`` ends the process. With
``autostart`` (the default) the node configures and activates itself at start-up, so
``ros2 run`` and ``ros2 launch`` need one command; ``autostart: false`` leaves it unconfigured
for ``ros2 lifecycle set`` or a lifecycle manager. Topics and services exist in every state:
while not active, images are ignored and questions are refused with the reason.

Interfaces (names relative to the node's namespace):

* subscribes ``image`` (sensor_msgs/Image), or ``image/compressed``
  (sensor_msgs/CompressedImage) when ``compressed`` is true; sensor-data QoS (best effort,
  keep last 5) unless ``image_reliability`` is ``reliable``;
* subscribes ``query`` (std_msgs/String): a question from a voice pipeline, answered like
  ``ask``;
* publishes ``response`` (live_ros/Response, reliable): one message per finished response,
  ``partial`` false. ``header.stamp`` / ``header.frame_id`` are those of the camera image after
  which the model spoke; ``query_id`` is 0 when the model spoke on its own;
* publishes ``response_partial`` (live_ros/Response, ``partial`` true) while a response is being
  decoded, when ``publish_partial`` is true: the cumulative text so far, so a display can show
  it growing. Consumers that only want whole answers ignore this topic;
* services ``ask`` (live_ros/Ask: the reply carries the query id of the answer to come) and
  ``reset`` (std_srvs/Trigger: clears the model's context, the KV cache);
* publishes ``/diagnostics`` (diagnostic_msgs/DiagnosticArray) every ``diagnostics_period``.

Data path: image callback -> FrameSampler (model rate by header stamp) -> conversion to RGB ->
StreamPipeline.submit_frame (encoder thread -> bounded queues, the oldest waiting frame dropped
-> decoder thread) -> on_response -> publisher. The node only translates messages, parameters
and threads.
"""

import collections
import gc
import os
import signal
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.logging import LoggingSeverity
from rclpy.qos import (
    DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data)
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from live_ros.action import Ask as AskAction
from live_ros.data.image_conversion import compressed_to_rgb, ImageConversionError, image_to_rgb
from live_ros.msg import Response
from live_ros.ros.frame_sampler import FrameSampler, RESTART, SKIP, STALE
from live_ros.ros.parameters import BY_NAME, PARAMETERS
from live_ros.srv import Ask
from live_ros.streaming.frame_stamps import FrameStamps, stamp_ns

#: Responses are few and must not be lost: reliable, a generous history for slow consumers.
RESPONSE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE)

#: How many used frames are remembered to give a response its image header back.
FRAME_HEADER_HISTORY = 512

#: A /diagnostics value not measured yet (no response so far, no frame seen).
UNKNOWN = 'n/a'

#: Ask action goals answered at once; more are rejected (each waits on an executor thread).
MAX_ASK_GOALS = 4

#: Executor threads: the Ask goals, plus one for images and two for services, the query
#: topic, action requests and timers, so a burst of goals never starves the camera.
EXECUTOR_THREADS = MAX_ASK_GOALS + 3


class AskGoal:
    """An Ask action goal waiting for its answer; filled from the engine's decoder thread."""

    def __init__(self, handle):
        self.handle = handle
        self.query_id = 0
        self.text = ''            # the answer so far, as sent in feedback
        self.response = None      # the engine's Response once it is delivered
        self.abort_reason = None  # set when the answer will never come (reset, shutdown)
        self.cancel_sent = False
        self.done = threading.Event()


class ModelLoadError(RuntimeError):
    """The configured model cannot be loaded; the node exits non-zero."""


class ThrottledLog:
    """One log line per kind of problem every ``period`` seconds, with the count in between."""

    def __init__(self, logger, period):
        self._logger = logger
        self._period = period
        self._lock = threading.Lock()
        self._last = {}
        self.counts = collections.Counter()

    def warn(self, kind, text):
        """Count a problem of ``kind``; log it unless the same kind was logged just now."""
        now = time.monotonic()
        with self._lock:
            self.counts[kind] += 1
            last = self._last.get(kind)
            if last is not None and now - last[0] < self._period:
                return
            suppressed = self.counts[kind] - last[1] - 1 if last else 0
            self._last[kind] = (now, self.counts[kind])
        note = f' ({suppressed} more since the last report)' if suppressed > 0 else ''
        self._logger.warning(f'{kind}: {text}{note}')


class LiveNode(LifecycleNode):
    """Stream camera frames through a LIVE model and publish what it says."""

    def __init__(self, **kwargs):
        super().__init__('live_node', **kwargs)
        for param in PARAMETERS:
            self.declare_parameter(param.name, param.default, param.descriptor())
        for param in PARAMETERS:
            reason = param.check(self.get_parameter(param.name).value)
            if reason:
                raise ValueError(reason)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        value = self.get_parameter_value

        self.sampler = FrameSampler(value('fps'))
        self.bad_input = ThrottledLog(self.get_logger(), value('log_throttle_period'))
        self._lock = threading.Lock()
        self._counts = collections.Counter()
        self._t0_ns = None             # stamp of stream time 0
        self._last_t = None            # stream time of the newest frame handed to the model
        self._newest_stamp_ns = None   # newest camera stamp seen, used or not
        self._frame_stamps = FrameStamps(FRAME_HEADER_HISTORY)  # used frames' image headers
        self._engine_errors_seen = 0
        self._dropped_seen = 0
        self._last_error = ''
        self.lifecycle_state = 'unconfigured'   # as the state machine's label
        self.finalized = threading.Event()      # the shutdown transition ran: the process ends
        self._raise_load_errors = False         # autostart: a model that fails ends the process

        # Lifecycle publishers: the engine only answers while active, and they say so.
        self.response_pub = self.create_lifecycle_publisher(Response, 'response', RESPONSE_QOS)
        self.partial_pub = self.create_lifecycle_publisher(
            Response, 'response_partial', RESPONSE_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.session = None
        self.pipeline = None

        # Image callbacks run in their own group: a burst of frames can only ever occupy one
        # executor thread, so services, queries and diagnostics always find a free one.
        self.image_group = MutuallyExclusiveCallbackGroup()
        self.request_group = ReentrantCallbackGroup()
        self.timer_group = MutuallyExclusiveCallbackGroup()

        image_qos = QoSProfile(
            history=qos_profile_sensor_data.history, depth=qos_profile_sensor_data.depth,
            reliability=(ReliabilityPolicy.RELIABLE if value('image_reliability') == 'reliable'
                         else ReliabilityPolicy.BEST_EFFORT),
            durability=DurabilityPolicy.VOLATILE)
        if value('compressed'):
            self.image_sub = self.create_subscription(
                CompressedImage, 'image/compressed', self.on_compressed_image, image_qos,
                callback_group=self.image_group)
        else:
            self.image_sub = self.create_subscription(
                Image, 'image', self.on_image, image_qos, callback_group=self.image_group)
        self.query_sub = self.create_subscription(
            String, 'query', self.on_query, 10, callback_group=self.request_group)
        self.ask_srv = self.create_service(
            Ask, 'ask', self.on_ask, callback_group=self.request_group)
        self.reset_srv = self.create_service(
            Trigger, 'reset', self.on_reset, callback_group=self.request_group)
        # Same name as the service (actions live in their own namespace): `ros2 action
        # send_goal ask live_ros/action/Ask` waits for the answer and streams it as feedback.
        self._goals = {}   # query_id -> AskGoal, guarded by _goals_lock
        self._goals_lock = threading.Lock()
        self.ask_action = ActionServer(
            self, AskAction, 'ask', execute_callback=self.execute_ask,
            goal_callback=self.on_ask_goal, cancel_callback=self.on_ask_cancel,
            callback_group=self.request_group)
        self.diagnostics_timer = self.create_timer(
            value('diagnostics_period'), self.on_diagnostics_timer,
            callback_group=self.timer_group)

    def get_parameter_value(self, name):
        """Return the current value of one of our parameters."""
        return self.get_parameter(name).value

    # ---------------------------------------------------------------- lifecycle --

    def start(self):
        """Configure and activate at once (``autostart``); ModelLoadError if the model fails.

        Goes through the lifecycle state machine, so ``ros2 lifecycle get`` tells the truth.
        """
        self._raise_load_errors = True
        try:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise ModelLoadError(self._last_error or 'configure failed')
        finally:
            self._raise_load_errors = False
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError(f'activate failed: {self._last_error}')

    def on_configure(self, state):
        """Load the model and build the engine, threads not started (the slow transition)."""
        try:
            self.pipeline = self._load_pipeline()
        except Exception as exc:
            with self._lock:
                self._last_error = str(exc)
            if not self._raise_load_errors:   # autostart: run() reports it as fatal
                self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.lifecycle_state = 'inactive'
        self.get_logger().info('configured (inactive): activate to start the stream')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        """Start the engine's threads and let images in; the stream goes on where it paused."""
        self.pipeline.start()
        self.lifecycle_state = 'active'
        value = self.get_parameter_value
        self.get_logger().info(
            f'listening on {self.image_sub.topic_name} ({value("image_reliability")}), '
            f'model at {value("fps"):g} fps on {self._stats().get("device", "?")}; '
            f'answers on {self.response_pub.topic_name}')
        return super().on_activate(state)   # enables the lifecycle publishers

    def on_deactivate(self, state):
        """Pause: images are ignored, the threads stop, the context and queued questions stay.

        An answer being decoded ends at its next token and is still published.
        """
        self.lifecycle_state = 'inactive'
        stopped = self.pipeline.close(timeout=4.0)
        if not stopped:
            self.get_logger().error('the engine threads did not stop in time')
        self.get_logger().info('deactivated: stream paused, context kept')
        result = super().on_deactivate(state)
        return result if stopped else TransitionCallbackReturn.ERROR

    def on_cleanup(self, state):
        """Free the model; the next configure starts a new stream."""
        self._release('cleaned up: model freed')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state):
        """Stop the engine and free the model from any state; run() then ends the process."""
        self._release('shut down')
        self.lifecycle_state = 'finalized'
        self.finalized.set()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state):
        """Recover to unconfigured: stop what runs and free the model."""
        self._release('error: engine stopped, model freed')
        return TransitionCallbackReturn.SUCCESS

    def _release(self, message):
        self.lifecycle_state = 'unconfigured'
        if not self.close(timeout=4.0):
            self.get_logger().error('the engine threads did not stop in time')
        self.session = None
        with self._goals_lock:   # no answer will come for them
            goals, self._goals = list(self._goals.values()), {}
        for goal in goals:
            goal.abort_reason = 'the model was unloaded before the answer'
            goal.done.set()
        self.sampler.reset()
        with self._lock:
            self._t0_ns = self._last_t = None
            self._frame_stamps = FrameStamps(FRAME_HEADER_HISTORY)
        import torch   # loaded with the model already; kept out of the node's import
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.get_logger().info(message)

    # ---------------------------------------------------------------- model and engine --

    def _load_pipeline(self):
        """Load the model and build the streaming engine, its threads not yet started."""
        value = self.get_parameter_value
        from live_ros.config import DEMO_MODEL_NOTE, is_embedded_default, resolve_model_path

        model_name = resolve_model_path(value('model'))
        self.get_logger().info(f'loading model {model_name!r} on {value("device")} ...')
        if is_embedded_default(model_name):
            self.get_logger().warning(DEMO_MODEL_NOTE)
        started = time.monotonic()
        if self.get_logger().get_effective_level() > LoggingSeverity.DEBUG:
            from live_ros.library_logs import quiet_library_logs
            quiet_library_logs()
        try:
            from live_ros.model import load_live_model
            from live_ros.streaming.pipeline import StreamPipeline
            from live_ros.streaming.session import StreamingSession

            model = load_live_model(model_name, device=value('device'), engine=value('engine'))
        except Exception as exc:
            raise ModelLoadError(f'cannot load model {model_name!r}: '
                                 f'{type(exc).__name__}: {exc}') from exc
        session = StreamingSession(
            model, response_threshold=value('response_threshold'),
            max_new_tokens=value('max_new_tokens'),
            context_budget=value('context_budget') or None)
        pipeline = StreamPipeline(
            model, session, queue_size=value('queue_size'), start=False,
            on_response=self._on_engine_response, on_token=self._on_engine_token)
        self.session = session
        self.get_logger().info(f'model loaded in {time.monotonic() - started:.1f} s')
        return pipeline

    def close(self, timeout=5.0):
        """Stop the engine's threads before the node goes; False if one did not stop."""
        pipeline, self.pipeline = self.pipeline, None
        return pipeline is None or bool(pipeline.close(timeout=timeout))

    # ----------------------------------------------------------------------- images --

    def on_image(self, msg):
        """Sample a raw camera frame by its stamp and hand it to the model's encoder."""
        self._offer(msg.header, lambda: image_to_rgb(msg))

    def on_compressed_image(self, msg):
        """Sample a JPEG/PNG frame like on_image; frames not used are never decoded."""
        self._offer(msg.header, lambda: compressed_to_rgb(msg))

    def _offer(self, header, convert):
        """Decide on the frame by stamp first, so unused frames cost no conversion."""
        if self.lifecycle_state != 'active':
            self._count('inactive')
            return
        stamp = stamp_ns(header.stamp)
        with self._lock:
            self._counts['received'] += 1
            if self._newest_stamp_ns is None or stamp > self._newest_stamp_ns:
                self._newest_stamp_ns = stamp
        decision = self.sampler.offer(stamp * 1e-9)
        if decision == SKIP:
            self._count('skipped')
            return
        if decision == STALE:
            self._count('stale')
            self.bad_input.warn('stale frame', 'a frame older than one already received was '
                                'dropped (stamps must increase)')
            return
        try:
            rgb = convert()
        except ImageConversionError as exc:
            self._count('bad')
            self.bad_input.warn(f'bad image ({exc.kind})', f'{exc}; frame skipped')
            return
        t = self._stream_time(stamp, restart=decision == RESTART)
        with self._lock:
            self._frame_stamps.add(t, Header(stamp=header.stamp, frame_id=header.frame_id))
        pipeline = self.pipeline
        if pipeline is None:
            return
        try:
            pipeline.submit_frame(rgb, t)
            self._count('submitted')
        except Exception as exc:  # the engine must never take the image callback down
            self._engine_error('submit_frame', exc)

    def _stream_time(self, stamp, restart):
        """Map a camera stamp to stream seconds; the stream clock never runs backwards.

        Stream time 0 is the first frame. When the camera clock restarts (a looped file, a
        restarted simulation) the stream continues one model period after the last frame.
        """
        with self._lock:
            if self._t0_ns is None:
                self._t0_ns = stamp
            elif restart and self._last_t is not None:
                self._t0_ns = stamp - int((self._last_t + self.sampler.period) * 1e9)
            t = (stamp - self._t0_ns) * 1e-9
            self._last_t = t
            return t

    def _header_for(self, stream_time):
        """Find the header of the frame after which the model spoke (at or before the time)."""
        with self._lock:
            header = self._frame_stamps.at(stream_time)
        return header or Header(stamp=self.get_clock().now().to_msg())

    # ---------------------------------------------------------------- engine output --

    def _on_engine_response(self, response):
        """Publish a finished response; runs on the engine's decoder thread, not the executor."""
        self._count('responses')
        if not (response.cancelled and not response.text):   # a question skipped unanswered
            self._publish(self.response_pub, response.text, response.stream_time,
                          response.query_id, partial=False)
        with self._goals_lock:
            goal = self._goals.pop(response.query_id, None) if response.query_id else None
        if goal is not None:
            goal.response = response
            goal.done.set()

    def _on_engine_token(self, query_id, partial_text, stream_time):
        """Publish the growing text of a response while it is decoded (decoder thread)."""
        if self.get_parameter_value('publish_partial'):
            self._publish(self.partial_pub, partial_text, stream_time, query_id, partial=True)
        with self._goals_lock:
            goal = self._goals.get(query_id) if query_id else None
        if goal is not None:
            # The decoder re-decodes the whole answer each token; when that revised earlier
            # characters (rare, byte-level tokens), the delta is the whole text.
            grown = partial_text.startswith(goal.text)
            delta = partial_text[len(goal.text):] if grown else partial_text
            goal.text = partial_text
            try:
                goal.handle.publish_feedback(AskAction.Feedback(delta=delta, text=partial_text))
            except Exception as exc:  # the goal or the context went away meanwhile
                if rclpy.ok(context=self.context):
                    self._engine_error('ask feedback', exc)

    def _publish(self, publisher, text, stream_time, query_id, partial):
        msg = Response(header=self._header_for(stream_time), text=text,
                       stream_time=float(stream_time), query_id=int(query_id), partial=partial)
        try:
            publisher.publish(msg)
        except Exception as exc:  # the context is gone during shutdown: nothing to tell
            if rclpy.ok(context=self.context):
                self._engine_error('publish', exc)

    # ---------------------------------------------------------------- requests --

    def _current_stream_time(self):
        """Stream time of the newest frame handed to the model: a question refers to 'now'.

        The engine answers after that frame (at once when it has been decoded already), so a
        question never waits for a frame that may not come.
        """
        with self._lock:
            return self._last_t if self._last_t is not None else 0.0

    def _query_problem(self, text):
        """Say why a question cannot be taken, or return None when it can."""
        text = (text or '').strip()
        limit = self.get_parameter_value('max_query_chars')
        if not text:
            return 'empty query: nothing to ask'
        if len(text) > limit:
            return f'query too long: {len(text)} characters, max_query_chars is {limit}'
        if self.lifecycle_state != 'active':
            return f'node is {self.lifecycle_state}: activate it to ask (ros2 lifecycle set)'
        if self.pipeline is None:
            return 'node is shutting down'
        return None

    def _submit_query(self, text, goal=None):
        """Validate and queue a question; return (query_id or 0, message).

        An action ``goal`` is registered under the same lock, before the engine can answer.
        """
        problem = self._query_problem(text)
        if problem:
            return 0, problem
        text = text.strip()
        pipeline = self.pipeline
        if pipeline is None:
            return 0, 'node is shutting down'
        try:
            with self._goals_lock:
                query_id = int(pipeline.submit_query(text, self._current_stream_time()))
                if goal is not None:
                    goal.query_id = query_id
                    self._goals[query_id] = goal
        except Exception as exc:
            self._engine_error('submit_query', exc)
            return 0, f'the engine refused the query: {exc}'
        self._count('queries')
        return query_id, (f'answer will be published on {self.response_pub.topic_name} '
                          f'with query_id {query_id}')

    def on_ask(self, request, response):
        """Take a question from the ask service; the answer follows on the response topic."""
        query_id, message = self._submit_query(request.query)
        response.accepted = query_id != 0
        response.query_id = query_id
        response.message = message
        if query_id:
            self.get_logger().info(f'query {query_id}: {request.query.strip()!r}')
        else:
            self.get_logger().warning(f'ask refused: {message}')
        return response

    def on_ask_goal(self, goal_request):
        """Accept an Ask goal the node can answer now; a rejection is logged with why."""
        problem = self._query_problem(goal_request.query)
        with self._goals_lock:
            waiting = len(self._goals)
        if problem is None and waiting >= MAX_ASK_GOALS:
            problem = f'{waiting} Ask goals are waiting already (at most {MAX_ASK_GOALS})'
        if problem:
            self.get_logger().warning(f'ask goal rejected: {problem}')
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def on_ask_cancel(self, goal_handle):
        """Take every cancel: the execute loop stops the answer at its next token."""
        return CancelResponse.ACCEPT

    def execute_ask(self, goal_handle):
        """Queue the question, stream the answer as feedback, return it as the result.

        Waits on this executor thread (MAX_ASK_GOALS at once); a cancel reaches the engine
        from here, so it also covers a cancel that came before the question was queued.
        """
        goal = AskGoal(goal_handle)
        query = goal_handle.request.query
        query_id, message = self._submit_query(query, goal=goal)
        result = AskAction.Result(query_id=query_id)
        if not query_id:
            result.message = message
            goal_handle.abort()
            return result
        self.get_logger().info(f'query {query_id} (action): {query.strip()!r}')
        while not goal.done.wait(0.05):
            pipeline = self.pipeline
            if pipeline is None or not rclpy.ok(context=self.context):
                goal.abort_reason = 'node is shutting down'
                break
            if goal_handle.is_cancel_requested and not goal.cancel_sent:
                goal.cancel_sent = True
                pipeline.cancel_query(query_id)
        response = goal.response
        if response is None:
            with self._goals_lock:
                self._goals.pop(query_id, None)
            result.text, result.message = goal.text, goal.abort_reason or 'no answer'
            goal_handle.abort()
            return result
        result.text, result.stream_time = response.text, float(response.stream_time)
        if response.cancelled:
            result.message = 'cancelled'
            goal_handle.canceled()
        else:
            goal_handle.succeed()
        return result

    def on_query(self, msg):
        """Take a question from a voice pipeline's text topic; refusals are logged only."""
        query_id, message = self._submit_query(msg.data)
        if query_id:
            self.get_logger().info(f'query {query_id} (topic): {msg.data.strip()!r}')
        else:
            self.bad_input.warn('query refused', message)

    def on_reset(self, request, response):
        """Forget the conversation and the video so far: a new activity starts."""
        pipeline = self.pipeline
        if pipeline is None:
            response.success, response.message = False, f'node is {self.lifecycle_state}'
            return response
        before = self._stats().get('cache_tokens', 0)
        try:
            pipeline.reset()
        except Exception as exc:
            self._engine_error('reset', exc)
            response.success, response.message = False, f'reset failed: {exc}'
            return response
        self.sampler.reset()
        with self._goals_lock:   # their questions were dropped with the context
            goals, self._goals = list(self._goals.values()), {}
        for goal in goals:
            goal.abort_reason = 'the context was reset before the answer'
            goal.done.set()
        with self._lock:
            self._counts['resets'] += 1
        after = self._stats().get('cache_tokens', 0)
        response.success = True
        response.message = f'context cleared: cache {before} -> {after} tokens'
        self.get_logger().info(response.message)
        return response

    # ---------------------------------------------------------------- parameters --

    def on_set_parameters(self, parameters):
        """Validate runtime changes, then hand the new values to the sampler and the model."""
        for parameter in parameters:
            spec = BY_NAME.get(parameter.name)
            if spec is None:
                continue
            reason = spec.check(parameter.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        session = self.session
        for parameter in parameters:
            if parameter.name == 'response_threshold' and session is not None:
                session.response_threshold = float(parameter.value)
            elif parameter.name == 'max_new_tokens' and session is not None:
                session.max_new_tokens = int(parameter.value)
            elif parameter.name == 'fps':
                self.sampler.set_fps(parameter.value)
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- diagnostics --

    def _count(self, key):
        with self._lock:
            self._counts[key] += 1

    def _engine_error(self, where, exc):
        with self._lock:
            self._counts['node_errors'] += 1
            self._last_error = f'{where}: {type(exc).__name__}: {exc}'
        self.bad_input.warn(f'engine error in {where}', f'{type(exc).__name__}: {exc}')

    def _stats(self):
        pipeline = self.pipeline
        if pipeline is None:
            return {}
        try:
            return dict(pipeline.stats())
        except Exception as exc:
            self._engine_error('stats', exc)
            return {}

    def on_diagnostics_timer(self):
        """Report the stream's health for rqt_robot_monitor and the aggregator, about 1 Hz."""
        stats = self._stats()
        with self._lock:
            counts = dict(self._counts)
            last_error = self._last_error
            newest = self._newest_stamp_ns
        engine_errors = int(stats.get('errors', 0))
        last_error = stats.get('last_error') or last_error
        errors_total = engine_errors + counts.get('node_errors', 0)
        node_name = self.get_fully_qualified_name().lstrip('/')  # as diagnostic_updater names
        status = DiagnosticStatus(
            name=f'{node_name}: stream',
            hardware_id=str(stats.get('device', self.get_parameter_value('device'))),
            level=DiagnosticStatus.OK, message='streaming')
        dropped = int(stats.get('frames_dropped', 0))
        if self.lifecycle_state != 'active':
            status.message = f'{self.lifecycle_state}: not streaming'
        elif counts.get('received', 0) == 0:
            status.level, status.message = DiagnosticStatus.WARN, 'no images received yet'
        elif dropped > self._dropped_seen:
            status.level = DiagnosticStatus.WARN
            newly = dropped - self._dropped_seen
            status.message = (f'the model falls behind the camera: {newly} '
                              f'frame{"" if newly == 1 else "s"} dropped since the last report')
        self._dropped_seen = dropped
        if errors_total > self._engine_errors_seen:
            status.level = DiagnosticStatus.ERROR
            status.message = f'engine error: {last_error}'
        self._engine_errors_seen = errors_total
        receive_delay = UNKNOWN
        if newest is not None:
            receive_delay = f'{(self.get_clock().now().nanoseconds - newest) * 1e-9:.3f}'
        values = {
            'frames_received': counts.get('received', 0),
            'frames_used': stats.get('frames_decoded', 0),
            'frames_dropped': stats.get('frames_dropped', 0),
            'frames_skipped_by_rate': counts.get('skipped', 0),
            'frames_stale': counts.get('stale', 0),
            'frames_bad': counts.get('bad', 0),
            'frames_ignored_inactive': counts.get('inactive', 0),
            'frames_submitted': counts.get('submitted', 0),
            'frames_encoded': stats.get('frames_encoded', 0),
            'backlog': stats.get('backlog', UNKNOWN),
            'max_backlog': stats.get('max_backlog', UNKNOWN),
            'lag_s': _fmt(stats.get('stream_lag_s')),
            'queue_delay_s': _fmt(stats.get('lag_s')),
            'receive_delay_s': receive_delay,
            'cache_tokens': stats.get('cache_tokens', 0),
            'context_rebuilds': stats.get('context_rebuilds', 0),
            'last_response_latency_s': _fmt(stats.get('last_latency_s')),
            'responses': counts.get('responses', 0),
            'queries': counts.get('queries', 0),
            'resets': counts.get('resets', 0),
            'device': stats.get('device', ''),
            'lifecycle_state': self.lifecycle_state,
            'fps': self.get_parameter_value('fps'),
            'response_threshold': self.get_parameter_value('response_threshold'),
            'errors': errors_total,
            'last_error': last_error,
        }
        status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
        self.diagnostics_pub.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))


def _fmt(value):
    return UNKNOWN if value is None else f'{float(value):.3f}'


def run(args=None):
    """Run the node until Ctrl-C or shutdown; return the exit status (1: failed to start).

    Fatal and shutdown messages go through the ROS logger (console, log file, /rosout while
    the node lives), logged before rclpy shuts logging down.

    Ctrl-C and SIGTERM are ours, not rclpy's: they end the spin loop and the context stays
    valid until the node is down, so the shutdown lines still reach /rosout (with rclpy's
    handler the context is gone first, and every later log line fails to publish). During
    the model load at start-up they interrupt it at once, as Python's own handler would.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    spinning = threading.Event()

    def on_stop_signal(signum, frame):
        first = not stop.is_set()
        stop.set()
        if first and not spinning.is_set():
            raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_stop_signal)
    node = None
    code = 0
    logger = rclpy.logging.get_logger('live_node')
    executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
    try:
        node = LiveNode()
        logger = node.get_logger()
        executor.add_node(node)
        if node.get_parameter_value('autostart'):
            node.start()
        else:
            logger.info('unconfigured: waiting for a lifecycle transition '
                        f'(ros2 lifecycle set {node.get_fully_qualified_name()} configure)')
        spinning.set()
        while rclpy.ok() and not node.finalized.is_set() and not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # the model failed to load, a parameter out of range, ...
        name = '' if isinstance(exc, ModelLoadError) else f'{type(exc).__name__}: '
        logger.fatal(f'error: {name}{exc}')
        code = 1
    finally:
        _ignore_stop_signals()
        if node is not None and not node.close(timeout=4.0):
            logger.error('the engine threads did not stop in time')
            code = code or 1
        executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        # Daemon threads of libraries (tqdm's monitor, ...) are not ours and do not block exit.
        left = [t.name for t in threading.enumerate()
                if t is not threading.main_thread() and t.is_alive() and not t.daemon]
        if left:
            logger.error(f'threads still running at exit: {left}')
            code = code or 1
        else:
            logger.info('stopped, no thread left')
        rclpy.try_shutdown()
    return code


def _ignore_stop_signals():
    """Let a bounded shutdown finish: a second Ctrl-C would interrupt it half way.

    Ctrl-C under ``ros2 launch`` reaches the node twice, from the terminal (the whole process
    group) and from launch forwarding it; the second one used to land inside close() as a
    KeyboardInterrupt. The shutdown is bounded (engine join 4 s, executor 1 s), and SIGKILL
    stays for a supervisor that will not wait.
    """
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)


def main(args=None):
    """Entry point of ``ros2 run live_ros live_node``; exit status 1 when the model fails.

    Once run() has shut everything down (engine threads joined, node destroyed, rclpy shut
    down) the process ends at once: with torch and the model loaded, the interpreter's own
    teardown takes seconds on a small CPU, and Ctrl-C must stop the node within 5 s.
    """
    code = run(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    sys.exit(main())
