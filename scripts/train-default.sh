#!/usr/bin/env bash
# Rebuilds the bundled model (models/) from ../shared: Kaggle TRAIN (its four classes) + PBC (eight classes),
# the whole MobileNetV2 fine-tuned for 6 epochs with cross-lab augmentation (the --fine-tune defaults otherwise),
# then the familiarity reference fitted on the same training images. Timing: BENCHMARKS.md.
# Kaggle TEST is never read here. Interrupted? Run it again with --resume.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
if [ ! -f "$SHARED/weights/mobilenet_v2_1.0_224_quant.tflite" ]; then
  echo "train:default needs $SHARED (weights and data); it is not in the repository." >&2
  exit 1
fi
node bin/hematovision.js import-backbone --tflite "$SHARED/weights/mobilenet_v2_1.0_224_quant.tflite" --out .cache/backbone.onnx
node bin/hematovision.js train --fine-tune --epochs 6 \
  --tflite "$SHARED/weights/mobilenet_v2_1.0_224_quant.tflite" \
  --data "$SHARED/data/kaggle-blood-cells/TRAIN" \
  --data "$SHARED/data/pbc" \
  --classes eosinophil,lymphocyte,monocyte,neutrophil,basophil,ig,erythroblast,platelet \
  --name hematovision-wbc8 \
  --out models "$@"
