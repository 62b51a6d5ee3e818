"""Frame preprocessing: resize the longest side, pad to a square, normalise.

VideoLLM-online scales the longest side to 384 (the other side kept even), pads to 384 x 384
centred with black, and normalises with mean = std = 0.5; each backbone sets its own size,
mean, std and pad colour in LiveConfig. Shrinking uses an anti-aliasing filter by default
(``resize_filter='area'``: OpenCV INTER_AREA, which averages every source pixel; bicubic
sampling aliases fine texture going from 1080p to 384); enlarging is bicubic. Models saved
before the setting existed load with 'bicubic' (what they were trained on).
"""

import numpy as np
import torch
import torch.nn.functional as F

RESIZE_FILTERS = ('area', 'bicubic')


def letterbox(image, size, pad_color=(0, 0, 0), resize_filter='area'):
    """Scale an RGB uint8 HxWx3 image so its longest side is ``size`` and pad it centred."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    h, w = image.shape[:2]
    if h >= w:
        new_h, new_w = size, max(2, int(round(w * size / h / 2)) * 2)
    else:
        new_h, new_w = max(2, int(round(h * size / w / 2)) * 2), size
    new_h, new_w = min(new_h, size), min(new_w, size)
    if (new_h, new_w) != (h, w):
        image = _resize(image, new_w, new_h, resize_filter)
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[:] = np.asarray(pad_color, dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top:top + new_h, left:left + new_w] = image[:, :, :3]
    return out


def preprocess_frames(images, size, mean, std, pad_color=(0, 0, 0), resize_filter='area'):
    """Turn RGB uint8 frames into a normalised float batch [B, 3, size, size]."""
    if resize_filter not in RESIZE_FILTERS:
        raise ValueError(f'resize_filter must be one of {RESIZE_FILTERS}, got {resize_filter!r}')
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    batch = np.stack([letterbox(_to_numpy(im), size, pad_color, resize_filter)
                      for im in images])
    pixels = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (pixels - mean) / std


def _resize(image, width, height, resize_filter='area'):
    # OpenCV; torch's antialiased bicubic where OpenCV is not installed.
    try:
        import cv2
    except ImportError:
        x = torch.from_numpy(np.ascontiguousarray(image[:, :, :3])).permute(2, 0, 1)[None]
        x = F.interpolate(x.float(), size=(height, width), mode='bicubic', antialias=True,
                          align_corners=False)
        return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    shrink = width < image.shape[1] or height < image.shape[0]
    flag = cv2.INTER_AREA if resize_filter == 'area' and shrink else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=flag)


def _to_numpy(image):
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    return np.asarray(image, dtype=np.uint8)
