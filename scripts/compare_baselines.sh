#!/usr/bin/env bash
# The paper's learning-method ablation (Table 1a) on this machine: LIVE vs per-frame vs
# interleaved dialogue, same small model, data, steps and seeds; scored by live-eval on held-out
# synthetic validation seeds: teacher-forced metrics with the plain argmax decision (threshold
# 0, the reference's evaluation default) and with the session's threshold 0.725, plus a
# free-running check. Trained models are reused when present (delete runs/compare/<fmt>).
# Usage: bash scripts/compare_baselines.sh [N_EVAL_DIALOGUES] [N_FREE_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
N_EVAL=${1:-12}
N_FREE=${2:-3}
OUT=runs/compare
mkdir -p "$OUT"
if [ ! -f "$OUT/smollm2-4l/config.json" ]; then
  "$PY" - <<'PYEOF'
from live_ros.model.backbones import resolve
from transformers import AutoModelForCausalLM, AutoTokenizer
src = str(resolve('smollm2-135m-instruct'))
lm = AutoModelForCausalLM.from_pretrained(src)
lm.model.layers = lm.model.layers[:4]
lm.config.num_hidden_layers = 4
lm.save_pretrained('runs/compare/smollm2-4l')
AutoTokenizer.from_pretrained(src).save_pretrained('runs/compare/smollm2-4l')
PYEOF
fi
for fmt in live per_frame interleaved; do
  if [ ! -f "$OUT/$fmt/final/live_config.json" ]; then
    "$PY" -m live_ros.cli.train --config "config/train/compare_$fmt.yaml" 2>&1 \
      | tr '\r' '\n' | grep -v 'it/s]$' > "$OUT/train_$fmt.log"
  fi
  "$PY" -m live_ros.cli.evaluate --model "$OUT/$fmt/final" --format "$fmt" \
    --data "synthetic:val:$N_EVAL:16" --free-run "$N_FREE" \
    --feature-cache runs/feature_cache/default --out "$OUT/eval_$fmt" \
    > "$OUT/eval_$fmt.log" 2>&1
  "$PY" -m live_ros.cli.evaluate --model "$OUT/$fmt/final" --format "$fmt" --threshold 0.725 \
    --data "synthetic:val:$N_EVAL:16" --feature-cache runs/feature_cache/default \
    --out "$OUT/eval_${fmt}_t0725" > "$OUT/eval_${fmt}_t0725.log" 2>&1
done
"$PY" - <<'PYEOF'
import json
f = (lambda v, p=False: '-' if v is None else (f'{100 * v:.1f}%' if p else f'{v:.2f}'))
rows = []
for fmt in ('live', 'per_frame', 'interleaved'):
    r = json.load(open(f'runs/compare/eval_{fmt}/eval.json'))
    t = json.load(open(f'runs/compare/eval_{fmt}_t0725/eval.json'))['teacher_forced']
    tf, fr = r['teacher_forced'], r.get('free_run', {})
    # The reference definitions exist for LIVE's layout only (the reference code evaluates
    # nothing else); the baselines' frames carry no streaming-EOS label to score.
    ref = tf.get('reference') or dict.fromkeys(('lm_ppl', 'time_diff', 'fluency',
                                                'lm_correctness'))
    rows.append(f"| {fmt} | {f(ref['lm_ppl'])} / {f(tf['lm_ppl'])} | "
                f"{f(ref['time_diff'])} / {f(tf['time_diff'])} / {f(t['time_diff'])} | "
                f"{f(ref['fluency'], 1)} / {f(tf['fluency'], 1)} / {f(t['fluency'], 1)} | "
                f"{f(ref['lm_correctness'], 1)} / {f(tf['lm_correctness'], 1)} | "
                f"{f(tf['decision_auc'])} | {f(fr.get('response_time_error_s'))} | "
                f"{f(fr.get('recall'), 1)} | {f(fr.get('unprompted_per_min'))} |")
# reference = the paper's definitions (headline); variant = live_ros's per-turn variant (the
# numbers this table printed before the reference metrics), at θ=0 and at θ=0.725.
head = ('| method | LM-PPL, reference / variant | TimeDiff (s), reference / variant θ=0 / '
        'variant θ=0.725 | Fluency, reference / variant θ=0 / θ=0.725 | LM-Correctness, '
        'reference / variant | decision AUC | free-run time err (s) | free-run recall | '
        'unprompted / min |\n|---|---|---|---|---|---|---|---|---|')
table = head + '\n' + '\n'.join(rows)
open('runs/compare/table.md', 'w').write(table + '\n')
print(table)
PYEOF
