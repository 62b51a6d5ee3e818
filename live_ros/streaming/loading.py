"""Loading the model a node or a benchmark streams with: one line that says why it did not.

A CUDA device where torch sees none is refused before anything loads (a raw torch assertion
after a 20-second load is no way to say it).
"""

from __future__ import annotations

import torch


class ModelLoadError(RuntimeError):
    """The model cannot be loaded (load_model): the message says why."""


def load_model(model_name: str, device: str = 'auto', engine: str = 'fast'):
    """Load a LiveModel for streaming; ModelLoadError says why not in one line.

    A CUDA device where torch sees none is refused before anything loads.
    """
    from live_ros.model.live_model import load_live_model
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ModelLoadError(f'device {device!r} asked for, but torch {torch.__version__} '
                             'sees no CUDA device here: use device cpu (or auto)')
    try:
        return load_live_model(model_name, device=device, engine=engine)
    except Exception as exc:
        raise ModelLoadError(f'cannot load model {model_name!r}: '
                             f'{type(exc).__name__}: {exc}') from exc
