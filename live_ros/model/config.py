"""LiveConfig: everything that defines a LIVE model, saved as live_config.json."""

import dataclasses
import json
import os
from dataclasses import dataclass, field

CONFIG_NAME = 'live_config.json'

# The embedded default model that ships inside the package (trained by scripts/train_default.sh).
EMBEDDED_MODEL_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models', 'default')

DEFAULT_SYSTEM_PROMPT = (
    'A multimodal AI assistant is helping users with some activities.'
    ' Below is their conversation, interleaved with the list of video frames received by the'
    ' assistant.'
)

# The released VideoLLM-online LoRA targets (regex, matched by peft against module names).
LLAMA_LORA_TARGETS = 'model.*(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)|lm_head$'


@dataclass
class LoraSettings:
    """LoRA layout; the connector is trained fully as a peft modules_to_save module."""

    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    targets: str = LLAMA_LORA_TARGETS
    modules_to_save: list = field(default_factory=lambda: ['connector'])


@dataclass
class LiveConfig:
    """Backbones, frame tokens, template and streaming defaults of one LIVE model.

    Backbone sources (``llm``, ``vision``): a local directory, a hub id, a ``.gguf`` file or
    ``backbones:<name>`` (resolved by ``live_ros.model.backbones.resolve``).
    """

    llm: str = ''
    vision: str = ''
    # Informational ('siglip', 'clip', 'dinov2', 'auto'): the tower's own config decides how it
    # loads and where its patch grid is (the last (H/p)*(W/p) hidden states).
    vision_kind: str = 'auto'
    # Global frame token: 'pooler' (pooler_output when the tower has one, else CLS),
    # 'cls' (first hidden state), or 'none'.
    global_token: str = 'pooler'
    pool: int = 3
    frame_size: int = 384
    image_mean: list = field(default_factory=lambda: [0.5, 0.5, 0.5])
    image_std: list = field(default_factory=lambda: [0.5, 0.5, 0.5])
    pad_color: list = field(default_factory=lambda: [0, 0, 0])
    # 'area' (anti-aliased shrinking) or 'bicubic' (live_ros/model/preprocess.py)
    resize_filter: str = 'area'
    fps: float = 2.0
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    frame_token: str = '<v>'
    interval_token: str = ','
    response_threshold: float = 0.725
    max_new_tokens: int = 100
    lora: LoraSettings = field(default_factory=LoraSettings)
    use_lora: bool = True
    # Token budget of the streaming KV cache (None: the LLM's max_position_embeddings).
    context_budget: int = None
    # 'bounded' (rebuild near the budget, streaming/context.py) or 'reference' (never
    # rebuild: the cache grows without limit, as in the reference code; for comparisons).
    context_mode: str = 'bounded'
    # Frames kept when the cache is rebuilt near the budget.
    context_keep_frames: int = 60
    # Recent dialogue turns kept (as text) when the cache is rebuilt.
    context_keep_turns: int = 8
    dtype: str = 'auto'
    # Vision tower precision: 'auto' = the LLM's dtype (bf16 on CUDA, float32 on CPU), or a
    # dtype name; ``vision_autocast`` (e.g. 'float16', CUDA only) runs the tower under
    # autocast. The reference keeps SigLIP in float32 under float16 autocast (the 8B preset).
    vision_dtype: str = 'auto'
    vision_autocast: str = None
    device: str = 'auto'
    attn: str = 'sdpa'
    # Streaming engine (streaming/backend.py): 'eager' (DynamicCache, the reference) or 'fast'
    # (LoRA merged at load, one StaticCache for the context bound, compiled steps when
    # ``engine_compile`` names a torch.compile mode such as 'reduce-overhead').
    engine: str = 'eager'
    engine_compile: str = None
    # Relative paths of trained weights inside a model dir (see model.py).
    adapter: str = None
    connector_weights: str = None

    @property
    def tokens_per_frame(self):
        """Frame tokens per frame: the global token plus the pooled k x k grid."""
        return (0 if self.global_token == 'none' else 1) + self.pool * self.pool

    def to_dict(self):
        """Plain dict for JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        """Build from a dict, tolerating unknown keys from newer versions."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault('resize_filter', 'bicubic')  # saved before the setting existed
        if isinstance(values.get('lora'), dict):
            values['lora'] = LoraSettings(**values['lora'])
        return cls(**values)

    def replace(self, **changes) -> 'LiveConfig':
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def save(self, directory: str) -> str:
        """Write live_config.json into a model directory."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_NAME)
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(self.to_dict(), f, indent=2)
        return path

    @classmethod
    def load(cls, path: str) -> 'LiveConfig':
        """Read live_config.json from a model directory (or the file itself)."""
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_NAME)
        with open(path, encoding='utf-8') as f:
            return cls.from_dict(json.load(f))


def _videollm_online_8b_v1plus():
    # LiveConfig's defaults are this model's: SigLIP pooler + 3 x 3 grid at 384 px, mean = std
    # = 0.5, black padding, 2 fps, LoRA on the released targets with the connector saved.
    return LiveConfig(
        llm='meta-llama/Meta-Llama-3-8B-Instruct',
        vision='google/siglip-large-patch16-384',
        vision_kind='siglip',
        lora=LoraSettings(r=128, alpha=256, dropout=0.05),
        vision_dtype='float32',
        vision_autocast='float16',
        adapter='chenjoya/videollm-online-8b-v1plus',
    )


def _tiny():
    # Backbone paths are filled in by the test helpers (live_ros/testing/tiny_models.py).
    return LiveConfig(
        vision_kind='auto', frame_size=32, fps=2.0, max_new_tokens=8,
        lora=LoraSettings(r=4, alpha=8, dropout=0.0),
        dtype='float32', device='cpu',
    )


def _default():
    # The embedded backbones built by live_ros.model.backbones (SmolLM2-135M + DINOv2-small).
    return LiveConfig(
        llm='backbones:smollm2-135m-instruct',
        vision='backbones:dinov2-small',
        vision_kind='dinov2',
        global_token='cls',
        pool=3,
        frame_size=224,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        lora=LoraSettings(r=16, alpha=32, dropout=0.05),
        context_budget=4096,
    )


PRESETS = {
    'videollm-online-8b-v1plus': _videollm_online_8b_v1plus,
    'tiny': _tiny,
    'default': _default,
}


def preset(name: str, **overrides) -> LiveConfig:
    """Return a fresh LiveConfig of a named preset, with fields overridden."""
    if name not in PRESETS:
        raise KeyError(f'unknown preset {name!r}; known: {sorted(PRESETS)}')
    return PRESETS[name]().replace(**overrides)


DEMO_MODEL_NOTE = (
    'the embedded default is a small demo model (SmolLM2-135M + ViT-S, trained here on the '
    'synthetic world of coloured shapes and a block tower only): it narrates and answers '
    'about that world and will describe real video wrongly. For real video load a real model '
    'with model:=<dir> (a live-train output, or the videollm-online-8b-v1plus preset with '
    'local Llama-3 / SigLIP weights and adapter: see README "Models").'
)


def is_embedded_default(model):
    """Tell whether a resolved model name is the embedded demo model (or its preset)."""
    if model in ('default', 'embedded'):
        return True
    # realpath: the colcon install links the package's files back to the source tree
    return os.path.realpath(str(model)) == os.path.realpath(EMBEDDED_MODEL_DIR)


def resolve_model_path(model: str | None = None) -> str:
    """Return what ``load_live_model`` should load when a user names ``model`` (or nothing).

    Nothing means the embedded default model when it is there (so the node, live-infer, the
    bench and the demo all run the trained model), else the 'default' preset (embedded
    backbones with an untrained connector). 'embedded' names the embedded model itself (the
    start of a fine-tune: config/train/finetune.yaml).
    """
    if model == 'embedded':
        if not os.path.isfile(os.path.join(EMBEDDED_MODEL_DIR, CONFIG_NAME)):
            raise FileNotFoundError(f'no embedded model in {EMBEDDED_MODEL_DIR}')
        return EMBEDDED_MODEL_DIR
    if model:
        return str(model)
    if os.path.isfile(os.path.join(EMBEDDED_MODEL_DIR, CONFIG_NAME)):
        return EMBEDDED_MODEL_DIR
    return 'default'
