#!/usr/bin/env bash
# Adapting to a lab from a few of its labelled cells. For each direction, a model trained on the other lab only
# (from `npm run eval:cross-lab`) is scored on this lab's images as it is, then against three ways of using a few
# labelled images of this lab: a frozen-backbone head, fine-tuning from ImageNet, and fine-tuning from that model
# (`train --fine-tune --from`). The few images never reach the scoring set (Kaggle: split by source photo).
# Usage: scripts/adapt-lab.sh [out-dir]  (35 min a draw on 2 shared cores; results in <out-dir>/adapt-lab.md)
# SEEDS="1 2 3" repeats it for other draws of the few images (default: 1). The source models default to the
# cross-lab run's; override with PBC_MODEL= / KAGGLE_MODEL=.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${1:-.cache/adapt-lab}
KAGGLE="$SHARED/data/kaggle-blood-cells/TRAIN"
PBC="$SHARED/data/pbc"
TFLITE="$SHARED/weights/mobilenet_v2_1.0_224_quant.tflite"
PBC_MODEL=${PBC_MODEL:-.cache/cross-lab/pbc-to-kaggle-all/model.onnx}
KAGGLE_MODEL=${KAGGLE_MODEL:-.cache/cross-lab/kaggle-to-pbc-all/model.onnx}
SEEDS=${SEEDS:-1}
for f in "$TFLITE" "$KAGGLE" "$PBC" "$PBC_MODEL" "$KAGGLE_MODEL"; do
  if [ ! -e "$f" ]; then
    echo "adapt-lab needs $f (../shared, and the models of npm run eval:cross-lab)." >&2
    exit 1
  fi
done
CLASSES=eosinophil,lymphocyte,monocyte,neutrophil
mkdir -p "$OUT"
echo "| lab, few labelled | draw | model | accuracy | macro-F1 | images scored |" >"$OUT/adapt-lab.md"
echo "| --- | --- | --- | --- | --- | --- |" >>"$OUT/adapt-lab.md"

# folder, label, split kind, lab folder, n per class, model trained on the other lab, seed of the draw
direction() {
  local slug=$1 name=$2 kind=$3 lab=$4 n=$5 source=$6 seed=$7
  local d="$OUT/$slug-$seed"
  rm -rf "$d"
  mkdir -p "$d"
  npx tsx scripts/few-shot-split.ts "$kind" "$lab" "$d/split" "$n" "$seed" >"$d/split.json"
  score() {
    local json="$d/$(echo "$1" | tr -c 'a-zA-Z0-9\n' '-').json"
    node bin/hematovision.js evaluate --data "$d/split/rest/TRAIN" --model "$2" --json >"$json"
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const f = (x) => (100 * x).toFixed(1) + " %";
      console.log(`| ${process.argv[2]} | ${process.argv[4]} | ${process.argv[3]} | ${f(r.accuracy)} | ${f(r.macroF1)} | ${r.n} |`);
    ' "$json" "$name" "$1" "$seed" | tee -a "$OUT/adapt-lab.md"
  }
  local few="$d/split/few/TRAIN"
  local ft=(train --fine-tune --tflite "$TFLITE" --data "$few" --classes $CLASSES --augment default --keep last)
  score "other lab's model as it is" "$source"
  node bin/hematovision.js train --data "$few" --classes $CLASSES --out "$d/frozen" >"$d/frozen.log" 2>&1
  score "frozen-backbone head" "$d/frozen/model.onnx"
  node bin/hematovision.js "${ft[@]}" --out "$d/imagenet" >"$d/imagenet.log" 2>&1
  score "fine-tuned from ImageNet" "$d/imagenet/model.onnx"
  node bin/hematovision.js "${ft[@]}" --from "$source" --out "$d/from" >"$d/from.log" 2>&1
  score "fine-tuned --from the other lab's model" "$d/from/model.onnx"
}

node bin/hematovision.js import-backbone --tflite "$TFLITE" --out .cache/backbone.onnx
for seed in $SEEDS; do
  direction pbc20 "PBC, 20 cells per class" pbc "$PBC" 20 "$KAGGLE_MODEL" "$seed"
  direction kaggle4 "Kaggle, 4 photos per class" kaggle "$KAGGLE" 4 "$PBC_MODEL" "$seed"
done
echo "Wrote $OUT/adapt-lab.md"
