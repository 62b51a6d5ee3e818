"""live_node: the LIVE video assistant as a ROS 2 lifecycle node.

    ros2 run live_ros live_node --ros-args --params-file config/live.yaml -r image:=/camera/image

Lifecycle (managed node): ``configure`` loads the model, ``activate`` starts the engine's
threads and the stream, ``deactivate`` pauses it (the context is kept; an answer being decoded
ends at its next token, marked ``cut: interrupted``), ``cleanup`` frees the model, ``shutdown``
ends the process. With ``autostart`` (the default) the node configures and activates itself
once it spins, so services, parameters and lifecycle queries answer during the load (questions
are refused with "loading"); ``autostart: false`` leaves it for ``ros2 lifecycle set``.

The node only wires ROS to the ROS-free engine (live_ros.streaming), one CameraStream per
camera (camera_stream.py; ``cameras`` empty: one stream under today's names):

    image -> CameraInput (stream clock, frame sampler, size check, RGB)
          -> StreamPipeline.submit_frame(rgb, stream time, tag=header)
          -> encoder thread -> FIFO -> decoder thread (StreamingSession, one KV cache)
          -> CameraStream.on_response (the engine's streamer) -> response topic

The model is loaded once; the cameras' engines take turns at it (streaming/fair_lock.py).
Questions come through each camera's AskServer (ask service, ask action, query topic);
/diagnostics through Diagnostics, one status per camera. Interfaces, parameters and QoS:
README "The ROS 2 node", parameters.py, qos.py.
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
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.logging import LoggingSeverity
from rclpy.signals import SignalHandlerOptions
from std_srvs.srv import Trigger

from live_ros.ros.camera_stream import CameraStream
from live_ros.ros.diagnostics import Diagnostics, NodeCounts
from live_ros.ros.parameters import check_changes, declare, PARAMETERS

class LiveNode(LifecycleNode):
    """Stream camera frames through a LIVE model and publish what it says, camera by camera."""

    def __init__(self, **kwargs):
        super().__init__('live_node', **kwargs)
        declare(self, PARAMETERS)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.model = None         # the one LiveModel, from configure to cleanup
        self.model_cfg = None
        self.exit_code = None     # set when the process should end (shutdown, failed start)
        self._query_ids = itertools.count(1)   # unique for the process's life, all cameras
        self.errors = NodeCounts()   # the node's own: a model that does not load
        requests = ReentrantCallbackGroup()
        names = camera_names(self.param('cameras'))
        self.streams = [CameraStream(self, name, requests) for name in names]
        if names != ['']:   # each camera has its own reset; this one resets them all
            self.reset_srv = self.create_service(Trigger, 'reset', self.on_reset_all,
                                                 callback_group=requests)
        self.diagnostics = Diagnostics(self, self.streams, self.errors,
                                       self.param('diagnostics_period'),
                                       callback_group=MutuallyExclusiveCallbackGroup())
        if self.param('autostart'):   # once spinning, off the threads that answer requests
            self._autostart_timer = self.create_timer(
                0.0, self._autostart, callback_group=MutuallyExclusiveCallbackGroup())

    @property
    def executor_threads(self) -> int:
        """Threads the executor needs: one per camera's images, requests, timers, lifecycle."""
        return len(self.streams) + 3

    def param(self, name: str):
        """Return the current value of one of our parameters."""
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:   # a string array left empty
            return []

    @property
    def state(self) -> str:
        """The lifecycle state's label, as rclpy's state machine holds it."""
        return self._state_machine.current_state[1]

    def settings(self) -> dict:
        """Return the values the model runs with now (its own where a parameter says so)."""
        engine = self.streams[0].engine
        return {'fps': round(1.0 / self.streams[0].camera.sampler.sampler.period, 6),
                'response_threshold': engine.session.response_threshold if engine else 'n/a',
                'device': self.param('device')}

    # ---------------------------------------------------------------- lifecycle --

    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        for transition in (self.trigger_configure, self.trigger_activate):
            if transition() != TransitionCallbackReturn.SUCCESS:
                self.get_logger().fatal(f'error: {self.errors.snapshot()[2]}')
                self.exit_code = 1
                return

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model once and build each camera's engine, threads not started."""
        try:
            self._load_engines()
        except Exception as exc:
            line = self.errors.error('configure', exc)
            if not self.param('autostart'):
                self.get_logger().error(f'configure failed: {line}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info('configured (inactive): activate to start the stream')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the engines' threads and let images in; each stream goes on where it paused."""
        for stream in self.streams:
            stream.start()
            self.get_logger().info(
                f'listening on {stream.camera.subscription.topic_name} '
                f'({self.param("image_reliability")}), model at {self.settings()["fps"]:g} fps '
                f'on {self.model.device}; answers on {stream.response_pub.topic_name}')
        return super().on_activate(state)   # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Pause: images are ignored, the threads stop, the contexts and questions stay."""
        stopped = all([stream.stop(timeout=4.0) for stream in self.streams])
        self.get_logger().info('deactivated: stream paused, context kept')
        result = super().on_deactivate(state)
        if not stopped:
            self.get_logger().error('the engine threads did not stop in time')
        return result if stopped else TransitionCallbackReturn.ERROR

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model; the next configure starts new streams."""
        self._release('cleaned up: model freed')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the engines and free the model from any state; run() then ends the process."""
        self._release('shut down')
        self.exit_code = 0
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured: stop what runs and free the model."""
        self._release('error: engine stopped, model freed')
        return TransitionCallbackReturn.SUCCESS

    def _release(self, message: str) -> None:
        if not self.close(timeout=4.0):
            self.get_logger().error('the engine threads did not stop in time')
        self.model = None
        import torch   # loaded with the model already; kept out of the node's import
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.get_logger().info(message)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop every engine's threads before the node goes; False if one did not stop."""
        return all([stream.release(timeout) for stream in self.streams])

    def _load_engines(self) -> None:
        """Load the model and build one streaming engine per camera, threads not started."""
        from live_ros.model.config import DEMO_MODEL_NOTE, is_embedded_default, resolve_model_path
        from live_ros.streaming.camera_rows import CameraRows
        from live_ros.streaming.loading import load_model
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
        self.model = load_model(model_name, param('device'), param('engine'))
        self.model_cfg = self.model.cfg
        rows = None
        if param('batch_cameras') and len(self.streams) > 1 and param('engine') == 'fast':
            rows = CameraRows(self.model, len(self.streams))
        for stream in self.streams:
            stream.engine = StreamPipeline.for_model(
                self.model, response_threshold=_own(param('response_threshold'), None),
                max_new_tokens=param('max_new_tokens') or None,
                context_budget=param('context_budget') or None, rows=rows,
                queue_size=param('queue_size'), start=False, streamer=stream,
                max_queries=param('max_queries'), query_ids=self._query_ids,
                max_query_wait=param('max_query_wait'))
            stream.camera.sampler.sampler.set_fps(param('fps') or self.model_cfg.fps)
        cameras = f' for {len(self.streams)} cameras' if len(self.streams) > 1 else ''
        self.get_logger().info(f'model loaded in {time.monotonic() - started:.1f} s{cameras}')

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
        if self.state != 'active' or self.model is None:
            return f'node is {self.state}: activate it to ask (ros2 lifecycle set)'
        return None

    def on_reset_all(self, request, response):
        """Reset every camera's stream at once (each camera also has its own reset)."""
        done = [(stream.name, stream.reset()) for stream in self.streams]
        response.success = all(message is not None for _, message in done)
        response.message = '; '.join(f'{name}: {message or "node is " + self.state}'
                                     for name, message in done)
        self.get_logger().info(f'reset: {response.message}')
        return response

    def on_set_parameters(self, parameters) -> SetParametersResult:
        """Check runtime changes, then hand them to the samplers and the engines."""
        reason = check_changes(parameters)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        cfg = self.model_cfg
        for p in parameters:
            for stream in self.streams:
                engine = stream.engine
                if p.name == 'fps':
                    stream.camera.sampler.sampler.set_fps(p.value or (cfg.fps if cfg else 2.0))
                elif p.name == 'response_threshold' and engine is not None:
                    engine.configure(response_threshold=_own(p.value, cfg.response_threshold))
                elif p.name == 'max_new_tokens' and engine is not None:
                    engine.configure(max_new_tokens=p.value or cfg.max_new_tokens)
        return SetParametersResult(successful=True)


def camera_names(cameras) -> list[str]:
    """Turn the cameras parameter into stream names: [''] (one stream, plain names) if empty.

    Names become topic names (front -> front/image): ROS name rules, no duplicates.
    """
    names = [str(name).strip().strip('/') for name in cameras or []]
    if not names:
        return ['']
    for name in names:
        if not name or not all(part and (part[0].isalpha() or part[0] == '_') and
                               all(ch.isalnum() or ch == '_' for ch in part)
                               for part in name.split('/')):
            raise ValueError(f'cameras: {name!r} is not a ROS name (letters, digits, _ and /, '
                             'each part starting with a letter or _)')
    if len(set(names)) != len(names):
        raise ValueError(f'cameras: a name appears twice in {names}')
    return names


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
    executor = None
    try:
        node = LiveNode()
        logger = node.get_logger()
        executor = MultiThreadedExecutor(num_threads=node.executor_threads)
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
        if executor is not None:
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
