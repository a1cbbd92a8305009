#!/usr/bin/env bash
# Leave-one-lab-out: train on one lab's images, score on the other lab's (a proxy for labs never seen).
# Kaggle TRAIN (BCCD photos) and PBC (CellaVision, Barcelona), the four classes; Kaggle TEST is never read.
# Usage: scripts/cross-lab.sh [out-dir]  (about 80 minutes on 2 cores; results in <out-dir>/cross-lab.md)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${1:-.cache/cross-lab}
KAGGLE="$SHARED/data/kaggle-blood-cells/TRAIN"
PBC="$SHARED/data/pbc"
TFLITE="$SHARED/weights/mobilenet_v2_1.0_224_quant.tflite"
if [ ! -f "$TFLITE" ] || [ ! -d "$KAGGLE" ] || [ ! -d "$PBC" ]; then
  echo "cross-lab needs $SHARED (weights, Kaggle TRAIN and PBC); it is not in the repository." >&2
  exit 1
fi
CLASSES=eosinophil,lymphocyte,monocyte,neutrophil
mkdir -p "$OUT"
node bin/hematovision.js import-backbone --tflite "$TFLITE" --out .cache/backbone.onnx

# name, training data, data scored, epochs, then the training options
run() {
  local name=$1 train=$2 score=$3 epochs=$4
  shift 4
  rm -rf "${OUT:?}/$name"
  if [ "$1" = frozen ]; then
    node bin/hematovision.js train --data "$train" --classes $CLASSES --name "$name" --out "$OUT/$name" >"$OUT/$name.log" 2>&1
  else
    node bin/hematovision.js train --fine-tune --tflite "$TFLITE" --data "$train" --classes $CLASSES --epochs "$epochs" \
      --keep last --name "$name" --out "$OUT/$name" "$@" >"$OUT/$name.log" 2>&1
  fi
  node bin/hematovision.js evaluate --data "$score" --model "$OUT/$name/model.onnx" --json >"$OUT/$name.json"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const f = (x) => (100 * x).toFixed(1) + "%";
    console.log(`| ${process.argv[2]} | ${f(r.accuracy)} | ${f(r.macroF1)} | ${r.n} |`);
  ' "$OUT/$name.json" "$name" | tee -a "$OUT/cross-lab.md"
}

echo "| trained on → scored on, backbone | accuracy | macro-F1 | images |" >"$OUT/cross-lab.md"
echo "| --- | --- | --- | --- |" >>"$OUT/cross-lab.md"
run pbc-to-kaggle-frozen "$PBC" "$KAGGLE" 0 frozen
run pbc-to-kaggle-block13 "$PBC" "$KAGGLE" 8 --augment cross-lab --train-from-block 13
run pbc-to-kaggle-all "$PBC" "$KAGGLE" 8 --augment cross-lab --train-from-block all
run kaggle-to-pbc-frozen "$KAGGLE" "$PBC" 0 frozen
run kaggle-to-pbc-block13 "$KAGGLE" "$PBC" 4 --augment cross-lab --train-from-block 13
run kaggle-to-pbc-all "$KAGGLE" "$PBC" 10 --augment cross-lab --train-from-block all
echo "Wrote $OUT/cross-lab.md"
