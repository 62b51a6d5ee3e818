"""live_node: the LIVE video assistant as a ROS 2 lifecycle node.

    ros2 run live_ros live_node --ros-args --params-file config/live.yaml -r image:=/camera/image

Lifecycle (managed node): ``configure`` loads the model, ``activate`` starts the engine's
threads and the stream, ``deactivate`` pauses it (the context is kept; an answer being decoded
ends at its next token, marked ``cut: interrupted``), ``cleanup`` frees the model, ``shutdown``
ends the process. With ``autostart`` (the default) the node configures and activates itself
once it spins, so services, parameters and lifecycle queries answer during the load (questions
are refused with "loading"); ``autostart: false`` leaves it for ``ros2 lifecycle set``.

The node only wires ROS to the ROS-free engine (live_ros.streaming):

    image -> CameraInput (stream clock, frame sampler, size check, RGB)
          -> StreamPipeline.submit_frame(rgb, stream time, tag=header)
          -> encoder thread -> FIFO -> decoder thread (StreamingSession, one KV cache)
          -> LiveNode.on_response (this node is the engine's streamer) -> response topic

Questions come through AskServer (ask service, ask action, query topic); /diagnostics through
Diagnostics. Interfaces, parameters and QoS: README "The ROS 2 node", parameters.py, qos.py.
"""

from __future__ import annotations

import gc
import itertools
import os
import signal
import sys
import threading
import time

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.logging import LoggingSeverity
from rclpy.signals import SignalHandlerOptions
from std_srvs.srv import Trigger

from live_ros.msg import Response
from live_ros.ros.ask_server import AskServer
from live_ros.ros.camera_input import CameraInput
from live_ros.ros.diagnostics import Diagnostics, NodeCounts
from live_ros.ros.parameters import check_changes, declare, PARAMETERS
from live_ros.ros.qos import RESPONSE_QOS
from live_ros.ros.throttled_log import ThrottledLog
from live_ros.streaming.streamer import ResponseStreamer

#: Executor threads: images, requests (services, action, query topic), timers, lifecycle.
EXECUTOR_THREADS = 4


class LiveNode(LifecycleNode, ResponseStreamer):
    """Stream camera frames through a LIVE model and publish what it says."""

    def __init__(self, **kwargs):
        super().__init__('live_node', **kwargs)
        declare(self, PARAMETERS)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        param = self.param
        self.counts = NodeCounts()
        self.bad_input = ThrottledLog(self.get_logger(), param('log_throttle_period'))
        self.engine = None        # StreamPipeline from configure to cleanup
        self.model_cfg = None
        self.exit_code = None     # set when the process should end (shutdown, failed start)
        self._query_ids = itertools.count(1)   # unique for the process's life
        self.response_pub = self.create_lifecycle_publisher(Response, 'response', RESPONSE_QOS)
        self.partial_pub = self.create_lifecycle_publisher(
            Response, 'response_partial', RESPONSE_QOS)
        requests = ReentrantCallbackGroup()
        self.camera = CameraInput(
            self, self.counts, self.bad_input, param('fps') or 2.0, param('max_stamp_jump'),
            param('max_image_pixels'), param('compressed'), param('image_reliability'),
            callback_group=MutuallyExclusiveCallbackGroup())
        self.ask_server = AskServer(self, self.submit_query, self.cancel_query,
                                    self.query_problem, callback_group=requests)
        self.reset_srv = self.create_service(Trigger, 'reset', self.on_reset,
                                             callback_group=requests)
        self.diagnostics = Diagnostics(self, self.counts, self.engine_stats,
                                       param('diagnostics_period'),
                                       callback_group=MutuallyExclusiveCallbackGroup())
        if param('autostart'):   # once spinning, off the threads that answer requests
            self._autostart_timer = self.create_timer(
                0.0, self._autostart, callback_group=MutuallyExclusiveCallbackGroup())

    def param(self, name: str):
        """Return the current value of one of our parameters."""
        return self.get_parameter(name).value

    @property
    def state(self) -> str:
        """The lifecycle state's label, as rclpy's state machine holds it."""
        return self._state_machine.current_state[1]

    def settings(self) -> dict:
        """Return the values the model runs with now (its own where a parameter says so)."""
        engine = self.engine
        return {'fps': round(1.0 / self.camera.sampler.sampler.period, 6),
                'response_threshold': engine.session.response_threshold if engine else 'n/a',
                'device': self.param('device')}

    # ---------------------------------------------------------------- lifecycle --

    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        for transition in (self.trigger_configure, self.trigger_activate):
            if transition() != TransitionCallbackReturn.SUCCESS:
                self.get_logger().fatal(f'error: {self.counts.snapshot()[2]}')
                self.exit_code = 1
                return

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and build the engine, its threads not started (the slow one)."""
        try:
            self.engine = self._load_engine()
        except Exception as exc:
            line = self.counts.error('configure', exc)
            if not self.param('autostart'):
                self.get_logger().error(f'configure failed: {line}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info('configured (inactive): activate to start the stream')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the engine's threads and let images in; the stream goes on where it paused."""
        self.engine.start()
        self.camera.engine = self.engine
        self.get_logger().info(
            f'listening on {self.camera.subscription.topic_name} '
            f'({self.param("image_reliability")}), model at {self.settings()["fps"]:g} fps on '
            f'{self.engine.model.device}; answers on {self.response_pub.topic_name}')
        return super().on_activate(state)   # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Pause: images are ignored, the threads stop, the context and questions stay."""
        self.camera.engine = None
        stopped = self.engine.close(timeout=4.0)
        self.get_logger().info('deactivated: stream paused, context kept')
        result = super().on_deactivate(state)
        if not stopped:
            self.get_logger().error('the engine threads did not stop in time')
        return result if stopped else TransitionCallbackReturn.ERROR

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model; the next configure starts a new stream."""
        self._release('cleaned up: model freed')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the engine and free the model from any state; run() then ends the process."""
        self._release('shut down')
        self.exit_code = 0
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured: stop what runs and free the model."""
        self._release('error: engine stopped, model freed')
        return TransitionCallbackReturn.SUCCESS

    def _release(self, message: str) -> None:
        self.camera.engine = None
        if not self.close(timeout=4.0):
            self.get_logger().error('the engine threads did not stop in time')
        self.ask_server.abandon_all()
        self.camera.reset()
        import torch   # loaded with the model already; kept out of the node's import
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.get_logger().info(message)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the engine's threads before the node goes; False if one did not stop."""
        engine, self.engine = self.engine, None
        return engine is None or bool(engine.close(timeout=timeout))

    def _load_engine(self):
        """Load the model and build the streaming engine, its threads not yet started."""
        from live_ros.model.config import DEMO_MODEL_NOTE, is_embedded_default, resolve_model_path
        from live_ros.streaming.pipeline import StreamPipeline
        param = self.param
        model_name = resolve_model_path(param('model'))
        self.get_logger().info(f'loading model {model_name!r} on {param("device")} ...')
        if is_embedded_default(model_name):
            self.get_logger().warning(DEMO_MODEL_NOTE)
        if self.get_logger().get_effective_level() > LoggingSeverity.DEBUG:
            from live_ros.library_logs import quiet_library_logs
            quiet_library_logs()
        started = time.monotonic()
        engine = StreamPipeline.load(
            model_name, param('device'), param('engine'),
            response_threshold=_own(param('response_threshold'), None),
            max_new_tokens=param('max_new_tokens') or None,
            context_budget=param('context_budget') or None, queue_size=param('queue_size'),
            start=False, streamer=self, max_queries=param('max_queries'),
            query_ids=self._query_ids)
        self.model_cfg = engine.model.cfg
        self.camera.sampler.sampler.set_fps(param('fps') or self.model_cfg.fps)
        self.get_logger().info(f'model loaded in {time.monotonic() - started:.1f} s')
        return engine

    # ---------------------------------------------------------------- the engine's streamer --

    def on_response(self, response) -> None:
        """Publish a finished response, end its action goal (the engine's decoder thread)."""
        if response.text or response.cut not in ('', 'cancelled'):
            self._publish(self.response_pub, response.text, response, partial=False)
        if response.query_id:
            self.ask_server.complete(response.query_id, response)

    def on_token(self, query_id: int, text: str, stream_time: float) -> None:
        """Publish the growing text of a response while it is decoded (decoder thread)."""
        if self.param('publish_partial'):
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
            if rclpy.ok(context=self.context):
                self.bad_input.warn('publish failed', self.counts.error('publish', exc))

    # ---------------------------------------------------------------- requests --

    def query_problem(self, text: str) -> str | None:
        """Say why a question cannot be taken now, or return None when it can."""
        limit = self.param('max_query_chars')
        if not text:
            return 'empty query: nothing to ask'
        if len(text) > limit:
            return f'query too long: {len(text)} characters, max_query_chars is {limit}'
        if self.state == 'configuring':
            return 'node is loading the model: ask again once it is active'
        if self.state != 'active' or self.engine is None:
            return f'node is {self.state}: activate it to ask (ros2 lifecycle set)'
        return None

    def submit_query(self, text: str) -> tuple[int, str]:
        """Queue a checked question in the engine: (query_id, message) or (0, why not)."""
        from live_ros.streaming.questions import QueryBacklogFull
        engine = self.engine
        if engine is None:
            return 0, f'node is {self.state}'
        try:
            query_id = engine.submit_query(text, self.camera.last_used or 0.0)
        except QueryBacklogFull as exc:
            return 0, str(exc)
        return query_id, (f'answer will be published on {self.response_pub.topic_name} '
                          f'with query_id {query_id}')

    def cancel_query(self, query_id: int) -> bool:
        """Stop a question now (queued: dropped; being answered: cut at its next token)."""
        engine = self.engine
        return engine is not None and engine.cancel_query(query_id)

    def on_reset(self, request, response):
        """Forget the conversation and the video so far, at once: a new activity starts."""
        engine = self.engine
        if engine is None:
            response.success, response.message = False, f'node is {self.state}'
            return response
        before = engine.session.cache_tokens
        engine.reset()   # the answer being decoded is cut; dropped questions end cancelled
        self.camera.reset()
        self.counts.add('resets')
        response.success = True
        response.message = (f'context cleared: cache {before} -> '
                            f'{engine.session.cache_tokens} tokens')
        self.get_logger().info(response.message)
        return response

    def on_set_parameters(self, parameters) -> SetParametersResult:
        """Check runtime changes, then hand them to the sampler and the engine."""
        reason = check_changes(parameters)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        cfg, engine = self.model_cfg, self.engine
        for p in parameters:
            if p.name == 'fps':
                self.camera.sampler.sampler.set_fps(p.value or (cfg.fps if cfg else 2.0))
            elif p.name == 'response_threshold' and engine is not None:
                engine.configure(response_threshold=_own(p.value, cfg.response_threshold))
            elif p.name == 'max_new_tokens' and engine is not None:
                engine.configure(max_new_tokens=p.value or cfg.max_new_tokens)
        return SetParametersResult(successful=True)

    def engine_stats(self) -> dict:
        """Return the engine's counters ({} without an engine)."""
        engine = self.engine
        return dict(engine.stats(), queries_waiting=engine.queries_waiting) if engine else {}


def _own(value, own):
    """Return ``own`` for a negative (or no) value: the parameter asks for the model's own."""
    return own if value is None or value < 0 else value


def run(args=None) -> int:
    """Run the node until Ctrl-C or shutdown; return the exit status (1: failed to start).

    Ctrl-C and SIGTERM are ours, not rclpy's: they end the spin loop and the context stays
    valid until the node is down, so the shutdown lines still reach /rosout.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda signum, frame: stop.set())
    node, code = None, 0
    logger = rclpy.logging.get_logger('live_node')
    executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
    try:
        node = LiveNode()
        logger = node.get_logger()
        executor.add_node(node)
        if not node.param('autostart'):
            logger.info('unconfigured: waiting for a lifecycle transition '
                        f'(ros2 lifecycle set {node.get_fully_qualified_name()} configure)')
        while rclpy.ok() and node.exit_code is None and not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
        code = node.exit_code or 0
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # a parameter out of range, ...
        logger.fatal(f'error: {type(exc).__name__}: {exc}')
        code = 1
    finally:
        _ignore_stop_signals()
        if node is not None and not node.close(timeout=4.0):
            logger.error('the engine threads did not stop in time')
            code = code or 1
        executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        # The engine's threads must be gone (a model still loading is cut by main's exit).
        left = [t.name for t in threading.enumerate()
                if t.name.startswith('live-') and t.is_alive()]
        if left:
            logger.error(f'threads still running at exit: {left}')
            code = code or 1
        else:
            logger.info('stopped, no thread left')
        rclpy.try_shutdown()
    return code


def _ignore_stop_signals():
    """Let a bounded shutdown finish: a second Ctrl-C would interrupt it half way.

    Terminal and launch both send one; the shutdown is bounded (engine join 4 s, executor 1 s).
    """
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)


def main(args=None):
    """Entry point of ``ros2 run live_ros live_node``; exit status 1 when the model fails.

    Once run() has shut everything down the process ends at once: with torch loaded the
    interpreter's own teardown takes seconds on a small CPU, and Ctrl-C must stop the node
    within 5 s.
    """
    code = run(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    sys.exit(main())
