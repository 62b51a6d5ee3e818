#!/usr/bin/env bash
# Retrain the embedded default model from scratch, reproducibly (fixed seeds), and install
# its trained weights into live_ros/models/default (live_config.json + adapter/, < 20 MB).
#
#   bash scripts/train_default.sh            # ~110 min on a busy 2-core CPU (faster on a GPU)
#   bash scripts/train_default.sh key=value  # extra live-train overrides, e.g. train.max_steps=50
#   bash scripts/train_default.sh --resume   # continue an interrupted run from its checkpoint
#   LIVE_ROS_TRAIN_CONFIG=config/train/default_long.yaml LIVE_ROS_DEFAULT_OUT=runs/candidate \
#       bash scripts/train_default.sh        # another recipe, installed elsewhere
#
# Uses the project venv (.venv, made by scripts/setup.sh) and the backbones built from the
# pinned pip packages (python -m live_ros.model.backbones --ensure). Logs to <train.output_dir>/train.log.
set -eo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PY="${LIVE_ROS_PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="${LIVE_ROS_DEFAULT_OUT:-$ROOT/live_ros/models/default}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
# Torch threads. On a quiet machine use all cores; on a busy shared one 1 thread is several
# times faster (measured here: OpenMP threads spin-waiting against other jobs tripled the CPU
# time per step), e.g. LIVE_ROS_TRAIN_THREADS=1 bash scripts/train_default.sh.
export OMP_NUM_THREADS="${LIVE_ROS_TRAIN_THREADS:-$(nproc)}"
CONFIG="${LIVE_ROS_TRAIN_CONFIG:-config/train/default.yaml}"
RUN_DIR=$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["train"]["output_dir"])' "$CONFIG")
mkdir -p "$RUN_DIR"

"$PY" -m live_ros.model.backbones --ensure
start=$(date +%s)
"$PY" -m live_ros.cli.train --config "$CONFIG" "$@" 2>&1 \
    | tee "$RUN_DIR/train.log"
echo "live-train took $(( $(date +%s) - start )) s"

FINAL="$RUN_DIR/final"
"$PY" - "$FINAL" "$OUT_DIR" <<'PYEOF'
"""Copy the trained parts (config + adapter) into the package, checking the size budget."""
import json
import os
import shutil
import sys

final, out = sys.argv[1], sys.argv[2]
cfg = json.load(open(os.path.join(final, 'live_config.json')))
os.makedirs(out, exist_ok=True)
for name in ('adapter', 'connector.safetensors', 'train_config.yaml'):
    target = os.path.join(out, name)
    if os.path.isdir(target):
        shutil.rmtree(target)
    elif os.path.exists(target):
        os.remove(target)
for rel in (cfg.get('adapter'), cfg.get('connector_weights')):
    if not rel:
        continue
    src = os.path.join(final, rel)
    if os.path.isdir(src):
        shutil.copytree(src, os.path.join(out, rel),
                        ignore=shutil.ignore_patterns('README.md'))
    else:
        shutil.copy2(src, os.path.join(out, rel))
shutil.copy2(os.path.join(final, 'train_config.yaml'), os.path.join(out, 'train_config.yaml'))
if cfg.get('adapter'):
    acfg_path = os.path.join(out, cfg['adapter'], 'adapter_config.json')
    acfg = json.load(open(acfg_path))
    acfg['base_model_name_or_path'] = cfg['llm']  # not this machine's path
    json.dump(acfg, open(acfg_path, 'w'), indent=2)
json.dump(cfg, open(os.path.join(out, 'live_config.json'), 'w'), indent=2)
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
print(f'default model installed in {out}: {size / 1e6:.1f} MB')
if size > 20e6:
    sys.exit('the default model exceeds the 20 MB budget')
PYEOF
