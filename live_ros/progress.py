"""Progress bars for the long jobs (evaluation, bench, feature caching).

Drawn on a terminal only: under CI, ros2 launch or a pipe into a log file, a bar's carriage
returns turn into thousands of lines, so it is off unless stderr is a TTY.
"""

import sys


def progress(iterable, total=None, desc=None, unit='it', leave=True):
    """Wrap ``iterable`` in a tqdm bar on stderr when stderr is a terminal."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=not sys.stderr.isatty())
