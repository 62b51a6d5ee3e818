#!/usr/bin/env bash
# "Teach it your robot" on a real clip no one here made (docs/RESULTS.md section 7): OpenCV's
# sample vtest.avi (pedestrians on a campus path, 79.5 s, from Debian's opencv-doc package)
# with the subtitles we wrote by hand for it (docs/teach/vtest.srt). Train on the first 55 s,
# test on the last 24 s, the embedded default before and after.
#
#   bash scripts/teach_vtest.sh        # ~10 min on a 2-core CPU (after scripts/setup.sh)
#
# Needs apt (the clip is downloaded, never committed). Everything goes to runs/teach/.
set -eo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh > /dev/null
OUT=runs/teach
mkdir -p "$OUT"
if [ ! -f "$OUT/vtest.avi" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download opencv-doc > /dev/null && dpkg-deb -x opencv-doc_*.deb x)
    cp "$tmp/x/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$OUT/vtest.avi"
    rm -rf "$tmp"
fi
cp docs/teach/vtest.srt "$OUT/vtest.srt"
# 1. subtitles -> streaming dialogues, split in time
live-convert subtitles "$OUT/vtest.avi" "$OUT/vtest.srt" "$OUT/vtest.json" --split-at 55
# 2. the embedded default on the held-out part
live-eval --model embedded --data "$OUT/vtest.test.json" --free-run 1 --out "$OUT/eval_default"
# 3. fine-tune the embedded default on the first part
live-train --config config/train/finetune.yaml data.train="$OUT/vtest.train.json" \
    train.output_dir="$OUT/finetune"
# 4. the fine-tuned model on the held-out part
live-eval --model "$OUT/finetune/final" --data "$OUT/vtest.test.json" --free-run 1 \
    --out "$OUT/eval_finetune"
