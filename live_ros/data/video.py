"""Reading video files and frame folders at a fixed stream rate (2 fps in the paper).

Resampling is by timestamp, through the one frame sampler (streaming/sampling.py) that
live_node uses: stream frame k (time k / fps) is the first source frame at or after k / fps,
so a recording gives the frames a live camera would have given the node; a source slower
than the stream rate repeats its previous frame.
"""

import glob
import math
import os

import cv2
import numpy as np

from live_ros.streaming.sampling import resample

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
EPS = 1e-6


def video_info(path):
    """(native fps, frame count, duration in s) of a video file, as OpenCV reports them."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise FileNotFoundError(f'cannot open video {path}')
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    duration = count / fps if fps > 0 else 0.0
    return fps, count, duration


def decode_video(path, start=0.0):
    """Yield (t, bgr) of a video file as decoded, from the first frame at or after ``start``.

    t is the frame index over the container's rate: CAP_PROP_POS_MSEC is the next frame's time
    with some backends (MJPG AVI), so it is only used when the rate is unknown. The one
    decoder of the package: training, live-infer and video_publisher see the same timing.
    """
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise FileNotFoundError(f'cannot open video {path}')
    native = cap.get(cv2.CAP_PROP_FPS) or 0.0
    try:
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            t = i / native if native > 0 else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            i += 1
            if t + EPS >= start:
                yield t, bgr
    finally:
        cap.release()


def iter_video(path, fps, max_frames=None, start=0.0):
    """Yield (k / fps, rgb) lazily: the last decoded frame at or before each stream time.

    Stream time 0 is the first frame at or after ``start``; only the frames the stream shows
    are converted to RGB.
    """
    def relative():
        first = None
        for t, bgr in decode_video(path, start):
            first = t if first is None else first
            yield t - first, bgr

    for t, bgr in resample(relative(), fps, max_frames=max_frames):
        yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_folder(path, fps, max_frames=None, source_fps=None, start=0.0):
    """Yield (k / fps, rgb) of a frame folder (sorted by name) resampled from ``source_fps``.

    A folder is taken to be at the stream rate already unless source_fps says otherwise;
    images are decoded only when the stream shows them.
    """
    files = sorted(f for f in glob.glob(os.path.join(path, '*'))
                   if f.lower().endswith(IMAGE_EXTS))
    if not files:
        raise FileNotFoundError(f'no images in {path}')
    src = source_fps or fps
    first = int(math.ceil(start * src - EPS))
    files = files[first:]
    timed = ((j / src, f) for j, f in enumerate(files))
    for t, file in resample(timed, fps, max_frames=max_frames):
        bgr = cv2.imread(file, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f'cannot decode {file}')
        yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_frames(source, fps, max_frames=None, start=0.0):
    """Yield (stream time, rgb uint8 HxWx3) of a video file or a frame folder, lazily."""
    if os.path.isdir(source):
        return iter_folder(source, fps, max_frames, start=start)
    return iter_video(source, fps, max_frames, start=start)


def write_video(path, frames, fps):
    """Write RGB frames to a video file (mp4v / MJPG by extension); used by tests and demos."""
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*('MJPG' if path.endswith('.avi') else 'mp4v'))
    out = cv2.VideoWriter(path, fourcc, fps, (w, h))
    if not out.isOpened():
        raise RuntimeError(f'cannot write {path}')
    for f in frames:
        out.write(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR))
    out.release()
