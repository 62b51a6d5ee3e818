"""One log line per kind of problem and period, with the count of those in between."""

import collections
import threading
import time


class ThrottledLog:
    """Log a problem of each ``kind`` at most once every ``period`` seconds (thread-safe)."""

    def __init__(self, logger, period: float):
        self._logger = logger
        self._period = period
        self._lock = threading.Lock()
        self._last = {}
        self.counts = collections.Counter()

    def warn(self, kind: str, text: str) -> None:
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
