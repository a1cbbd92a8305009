/**
 * Stand-ins for the familiarity tests: a "classifier" whose input is already the pooled features (so a
 * graph appended by appendFamiliarity can be run on chosen feature rows), and a session run of its two
 * familiarity outputs.
 */
import { OUTPUTS } from '../model/classifier-graph.js';
import { GraphBuilder } from '../model/onnx/graph-builder.js';
import { OnnxSession } from '../model/onnx/runtime.js';

export function featureModel(dims: number[]): Uint8Array {
  const D = dims.reduce((a, b) => a + b, 0);
  const g = new GraphBuilder('features_only', 13);
  g.input('x', ['N', D]);
  g.op('Identity', ['x'], {}, OUTPUTS.features);
  g.output(OUTPUTS.features, ['N', D]);
  return g.toBytes({ metadata: { 'hematovision.feature_dims': dims.join(',') } });
}

/** cell_distance and image_distance of n rows of D features, run through the model file. */
export async function runFamiliarity(bytes: Uint8Array, x: Float32Array, D: number) {
  const s = await OnnxSession.create(bytes);
  try {
    const out = await s.run({ x: { data: x, dims: [x.length / D, D] } }, [
      OUTPUTS.cellDistance,
      OUTPUTS.imageDistance,
    ]);
    return { cell: out[OUTPUTS.cellDistance].data, image: out[OUTPUTS.imageDistance].data };
  } finally {
    await s.close();
  }
}
