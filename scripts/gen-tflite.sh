#!/usr/bin/env bash
# Regenerates the TFLite reader from our schema subset (needs Debian's flatbuffers-compiler).
set -euo pipefail
cd "$(dirname "$0")/../src/model/tflite"
rm -rf generated
flatc --ts -o generated tflite_subset.fbs
# NodeNext resolution wants explicit extensions; tsx and vitest map .js to the .ts file.
find generated -name '*.ts' -exec sed -i -E "s#from '(\.[^']+)'#from '\1.js'#" {} +
