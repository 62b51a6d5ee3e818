"""The parameters of live_node and video_publisher, one table each.

Each entry gives the default, the description shown by ``ros2 param describe``, whether the
value may change at runtime, and the allowed range. The nodes declare exactly these tables;
test_launch_config checks that config/live.yaml and launch/live.launch.py agree with them.
"""

import threading
from dataclasses import dataclass

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)

IMAGE_RELIABILITIES = ('best_effort', 'reliable')


@dataclass(frozen=True)
class Param:
    """One node parameter: default value, description, runtime changeability, range."""

    name: str
    default: object
    description: str
    read_only: bool = True
    min_value: float = None
    max_value: float = None
    choices: tuple = ()

    def descriptor(self):
        """Build the ParameterDescriptor the node declares, with its range for numbers."""
        descriptor = ParameterDescriptor(
            name=self.name, description=self.description, read_only=self.read_only)
        if isinstance(self.default, list):   # an empty list says no type: say it here
            descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
        constraints = []
        if self.choices:
            constraints.append('one of: ' + ', '.join(self.choices))
        if isinstance(self.default, bool):
            pass
        elif isinstance(self.default, int) and self.min_value is not None:
            descriptor.integer_range = [IntegerRange(
                from_value=int(self.min_value), to_value=int(self.max_value), step=1)]
        elif isinstance(self.default, float) and self.min_value is not None:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(self.min_value), to_value=float(self.max_value), step=0.0)]
        if self.min_value is not None:
            constraints.append(f'range [{self.min_value}, {self.max_value}]')
        descriptor.additional_constraints = '; '.join(constraints)
        return descriptor

    def check(self, value):
        """Return None when ``value`` is acceptable, else the reason it is refused.

        Ranges are enforced by rclpy as well; checking here too gives the same clear reason
        at start-up (from the YAML file) and at runtime.
        """
        if self.choices and value not in self.choices:
            return f'{self.name} must be one of {", ".join(self.choices)}, not {value!r}'
        if self.min_value is not None and not (self.min_value <= value <= self.max_value):
            return (f'{self.name} must be within [{self.min_value}, {self.max_value}], '
                    f'not {value!r}')
        return None


PARAMETERS = (
    Param('model', '',
          'LIVE model: a model directory (live_config.json + weights) or a preset name; '
          "empty = the embedded default model ('default' preset)."),
    Param('cameras', [],
          'Camera names, one stream each on one model: camera C reads C/image and answers on '
          'C/response, C/response_partial, C/ask, C/query, C/reset (reset: all); empty = one '
          'camera on image, response, ask, ...'),
    Param('batch_cameras', True,
          "With several cameras and engine fast: the cameras' frame and decode steps that "
          'wait for the model go in one forward (one KV cache row per camera); false: one '
          'forward per step.'),
    Param('autostart', True,
          'Configure (load the model) and activate (stream) at start-up; false: stay '
          'unconfigured for lifecycle transitions (ros2 lifecycle set, a lifecycle manager).'),
    Param('engine', 'fast',
          'Streaming engine: fast (LoRA merged at load, one static KV cache, compiled steps '
          'on CUDA) or eager (plain transformers, the reference path).',
          choices=('eager', 'fast')),
    Param('device', 'auto', "Torch device for the model: 'auto', 'cpu', 'cuda', 'cuda:1', ..."),
    Param('fps', 0.0,
          "Frames per second the model sees, sampled by header stamp (newest frame wins); "
          "0 = the model's own rate (2 for VideoLLM-online).",
          read_only=False, min_value=0.0, max_value=30.0),
    Param('response_threshold', -1.0,
          'The model speaks on its own when P(stay silent) falls below this (LIVE streaming '
          "EOS threshold; 0.5-0.8 in the paper); negative = the model's own (0.725).",
          read_only=False, min_value=-1.0, max_value=1.0),
    Param('max_new_tokens', 0, "Longest response, in tokens; 0 = the model's own (100).",
          read_only=False, min_value=0, max_value=2048),
    Param('image_reliability', 'best_effort',
          'QoS reliability of the image subscription: best_effort (sensor data QoS) or '
          'reliable.', choices=IMAGE_RELIABILITIES),
    Param('compressed', False,
          'Subscribe to sensor_msgs/CompressedImage on image/compressed instead of image.'),
    Param('queue_size', 1,
          'Frames waiting for the model at each engine stage; when full the oldest is dropped '
          '(newest wins). 1 keeps the model closest to the camera when it falls behind.',
          min_value=1, max_value=64),
    Param('context_budget', 0,
          'Token budget of the KV cache before it is rebuilt (0 = the model default).',
          min_value=0, max_value=1048576),
    Param('max_query_chars', 1000, 'Longer questions are refused with a reason.',
          read_only=False, min_value=1, max_value=100000),
    Param('max_queries', 4,
          'Questions waiting for an answer, over the ask service, the ask action and the '
          'query topic together; more are refused at once with the reason.',
          min_value=1, max_value=1000),
    Param('max_query_wait', 2.0,
          'A question whose answer would start later than this many seconds (the answers '
          'ahead of it, as measured so far) is refused at once with the reason, and one that '
          "cannot start in time any more ends as cut 'expired'; 0 = no limit.",
          min_value=0.0, max_value=3600.0),
    Param('max_image_pixels', 4096 * 4096,
          'Larger images are skipped before they are decoded (raw: by width x height; JPEG '
          'and PNG: by their header); 0 = no limit.', min_value=0, max_value=2 ** 31 - 1),
    Param('max_stamp_jump', 5.0,
          'An image stamp this many seconds further ahead than the arrival clock is a clock '
          'fault: stream time goes on at the arrival rate (logged, on /diagnostics).',
          min_value=0.1, max_value=86400.0),
    Param('publish_partial', True,
          'Publish the text decoded so far on response_partial while a response is written.',
          read_only=False),
    Param('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
          min_value=0.1, max_value=60.0),
    Param('log_throttle_period', 5.0,
          'At most one log line per kind of bad input (encoding, size, empty, ...) in this '
          'many seconds; the count in between is reported.', min_value=0.0, max_value=86400.0),
)

BY_NAME = {param.name: param for param in PARAMETERS}


#: What a parameter of each type takes, in words (a refused value's reason).
TYPE_WORDS = {bool: 'true or false', int: 'an integer', float: 'a number', str: 'a string',
              list: 'a list of strings'}

# Type errors found before rclpy's own check (which says only "expected '1' got '4'"), kept
# for the on-set callback of the same set call: both run on the thread that serves it.
_wrong_types = threading.local()


def _type_error(param, value):
    """Return why ``value`` has the wrong type for ``param``, or None."""
    want = type(param.default)   # (an integer for a float is converted before this check)
    if isinstance(value, want) and not (want is int and isinstance(value, bool)):
        return None
    given = TYPE_WORDS.get(type(value), type(value).__name__)
    return f'{param.name} takes {TYPE_WORDS[want]}, not {given} {value!r}'


def declare(node, table):
    """Declare a table's parameters on a node; ValueError with the reason for a bad value.

    An integer given for a floating-point parameter (``ros2 param set /live_node fps 5``) is
    taken as the float it means, at start-up and at runtime; a value of another wrong type
    is refused in words by check_changes.
    """
    by_name = {param.name: param for param in table}

    def before_rclpy_checks(parameters):
        from rclpy.parameter import Parameter
        out, errors = [], {}
        for p in parameters:
            spec = by_name.get(p.name)
            if spec is None or p.type_ == Parameter.Type.NOT_SET:
                out.append(p)
            elif isinstance(spec.default, float) and p.type_ == Parameter.Type.INTEGER:
                out.append(Parameter(p.name, Parameter.Type.DOUBLE, float(p.value)))
            elif (error := _type_error(spec, p.value)):
                # rclpy would refuse it with type numbers: pass the current value on instead
                # and let check_changes refuse the change with the reason in words
                errors[p.name] = error
                out.append(node.get_parameter(p.name))
            else:
                out.append(p)
        _wrong_types.errors = errors
        return out

    node.add_pre_set_parameters_callback(before_rclpy_checks)
    for param in table:
        if param.default == []:   # a string array: unset (and a YAML []) reads as []
            from rclpy.parameter import Parameter
            node.declare_parameter(param.name, Parameter.Type.STRING_ARRAY, param.descriptor())
            continue
        node.declare_parameter(param.name, param.default, param.descriptor())
        reason = param.check(node.get_parameter(param.name).value)
        if reason:
            raise ValueError(reason)


def check_changes(parameters):
    """Return the reason the first of these runtime changes is refused, or None."""
    errors, _wrong_types.errors = getattr(_wrong_types, 'errors', {}), {}
    for parameter in parameters:
        if parameter.name in errors:
            return errors[parameter.name]
        spec = BY_NAME.get(parameter.name)
        reason = spec.check(parameter.value) if spec else None
        if reason:
            return reason
    return None


VIDEO_PUBLISHER_PARAMETERS = (
    Param('source', '', 'Video file, camera:<index>, synthetic:<seed> or a rosbag2 '
          '(folder, .mcap, .db3 or bag:<path>).'),
    Param('bag_topic', '', 'Image topic to play from a bag source (empty = its only one).'),
    Param('fps', 0.0,
          'Publishing rate in Hz; 0 = the source own rate (file fps, camera 30, else 10).',
          min_value=0.0, max_value=240.0),
    Param('frame_id', 'camera', 'header.frame_id of every image.', read_only=False),
    Param('loop', False, 'Start the file or episode again at its end instead of exiting.',
          read_only=False),
    Param('count', 0, 'Stop after this many frames (0 = no limit).', read_only=False,
          min_value=0, max_value=2 ** 31 - 1),
    Param('max_size', 0,
          'Scale frames down so the longest side is at most this (0 = as read).',
          min_value=0, max_value=8192),
    Param('reliability', 'best_effort', 'best_effort (sensor data QoS) or reliable.',
          choices=IMAGE_RELIABILITIES),
    Param('compressed', False,
          'Also publish JPEG sensor_msgs/CompressedImage on image/compressed.'),
    Param('wait_for_subscribers', 0,
          'Hold the first frame until this many subscribers are matched (0 = start now), so '
          'a consumer started alongside sees the video from its first frame.',
          min_value=0, max_value=1000),
)
