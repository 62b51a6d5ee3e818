"""live_node's /diagnostics: the engine's counters, the node's beside them, a level that means.

The engine's counters keep the engine's own names. OK while images arrive and the model keeps
up; WARN when no image came for ``warn_after_s`` seconds or when most images of the last report
were dropped (stale, or the model fell behind); ERROR when the camera has been gone for
``error_after_s`` seconds, or on an engine error since the last report. Times are in seconds
(keys ending in ``_s``).
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

#: A value not measured yet (no response so far, no frame seen).
UNKNOWN = 'n/a'
#: Share of the images of one report that may be dropped before it warns.
DROP_WARN_SHARE = 0.5


@dataclass
class NodeCounts:
    """What the node counts itself (thread-safe); the engine counts the rest."""

    counts: collections.Counter = field(default_factory=collections.Counter)
    last_image: float = None      # monotonic time of the newest image
    last_error: str = ''
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, n: int = 1) -> None:
        """Count ``n`` events of ``key``."""
        with self._lock:
            self.counts[key] += n

    def image(self) -> None:
        """Count an image received now."""
        with self._lock:
            self.counts['images_received'] += 1
            self.last_image = time.monotonic()

    def error(self, where: str, exc: Exception) -> str:
        """Count an error of the node's own; return its line."""
        line = f'{where}: {type(exc).__name__}: {exc}'
        with self._lock:
            self.counts['node_errors'] += 1
            self.last_error = line
        return line

    def snapshot(self) -> tuple[dict, float, str]:
        """Return (counts, last image time, last error)."""
        with self._lock:
            return dict(self.counts), self.last_image, self.last_error


class Diagnostics:
    """Publish one DiagnosticStatus per camera stream every ``period`` seconds.

    ``streams``: objects with ``name``, ``counts`` (NodeCounts) and ``engine_stats()`` (the
    engine's stats, {} without one); ``errors``: the node's own (a model that did not load),
    reported on every stream.
    """

    def __init__(self, node, streams, errors: NodeCounts, period: float,
                 warn_after_s: float = 3.0, error_after_s: float = 30.0, callback_group=None):
        self.node = node
        self.streams = streams
        self.errors = errors
        self.warn_after_s = warn_after_s
        self.error_after_s = error_after_s
        self._previous = {}   # per stream name
        self.publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.timer = node.create_timer(period, self.publish, callback_group=callback_group)

    def publish(self) -> None:
        """Report now (the timer's callback)."""
        state, settings = self.node.state, self.node.settings()
        status = [self.status(stream.name, stream.counts, stream.engine_stats(), state, settings)
                  for stream in self.streams]
        self.publisher.publish(DiagnosticArray(
            header=Header(stamp=self.node.get_clock().now().to_msg()), status=status))

    def status(self, name: str, node_counts: NodeCounts, stats: dict, state: str,
               settings: dict) -> DiagnosticStatus:
        """Build one stream's status from its engine's stats and its counts."""
        counts, last_image, last_error = node_counts.snapshot()
        own, _, own_error = self.errors.snapshot()
        counts['node_errors'] = counts.get('node_errors', 0) + own.get('node_errors', 0)
        errors = int(stats.get('errors', 0)) + counts['node_errors']
        last_error = stats.get('last_error') or last_error or own_error
        since_image = None if last_image is None else time.monotonic() - last_image
        now = {'stale': counts.get('images_stale', 0), 'errors': errors,
               'dropped': int(stats.get('frames_dropped', 0)),
               'decoded': int(stats.get('frames_decoded', 0))}
        previous = self._previous.get(name, {})
        new = {k: v - previous.get(k, 0) for k, v in now.items()}
        self._previous[name] = now
        node_name = self.node.get_fully_qualified_name().lstrip('/')
        level, message = DiagnosticStatus.OK, 'streaming'
        lost = new['stale'] + new['dropped']
        if state != 'active':
            message = f'{state}: not streaming'
        elif since_image is None:
            level, message = DiagnosticStatus.WARN, 'no images received yet'
        elif since_image >= self.error_after_s:
            level, message = DiagnosticStatus.ERROR, f'no image for {since_image:.0f} s'
        elif since_image >= self.warn_after_s:
            level, message = DiagnosticStatus.WARN, f'no image for {since_image:.1f} s'
        elif lost > DROP_WARN_SHARE * max(1, lost + new['decoded']):
            level = DiagnosticStatus.WARN
            message = (f'{lost} of {lost + new["decoded"]} frames dropped since the last '
                       'report (stale, or the model falls behind)')
        if new['errors'] > 0:
            level, message = DiagnosticStatus.ERROR, f'engine error: {last_error}'
        values = {
            **{k: stats.get(k, 0) for k in (
                'frames_received', 'frames_encoded', 'frames_decoded', 'frames_dropped',
                'frames_stale', 'frames_discarded', 'backlog', 'max_backlog',
                'queries_received', 'queries_refused', 'responses', 'cache_tokens',
                'context_rebuilds')},
            **{k: counts.get(k, 0) for k in (
                'images_received', 'images_skipped_by_rate', 'images_stale', 'images_bad',
                'images_ignored_inactive', 'zero_stamps', 'stamp_jumps', 'stamps_back',
                'resets')},
            'lag_s': _seconds(stats.get('lag_s')),
            'stream_lag_s': _seconds(stats.get('stream_lag_s')),
            'last_latency_s': _seconds(stats.get('last_latency_s')),
            'since_last_image_s': _seconds(since_image),
            'queries_waiting': stats.get('queries_waiting', UNKNOWN),
            'device': stats.get('device', settings.get('device', '')),
            'lifecycle_state': state,
            **settings,
            'errors': errors,
            'last_error': last_error,
        }
        if name:
            values = {'camera': name, **values}
        return DiagnosticStatus(
            name=f'{node_name}: {name + " " if name else ""}stream',
            hardware_id=str(values['device']), level=level,
            message=message,
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])


def _seconds(value):
    return UNKNOWN if value is None else f'{float(value):.3f}'
