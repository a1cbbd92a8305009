/**
 * Stand-ins for the familiarity tests: synthetic feature rows and their train+validation set as
 * fitFamiliarity takes it, a "classifier" whose input is already the pooled features (so a graph appended by
 * appendFamiliarity can be run on chosen feature rows), and a session run of its two familiarity outputs.
 */
import { createRng } from '../imaging/random.js';
import { OUTPUTS } from '../model/classifier-graph.js';
import { GraphBuilder } from '../model/onnx/graph-builder.js';
import { OnnxSession } from '../model/onnx/runtime.js';
import type { LabelledFeatures } from '../training/familiarity.js';

/** Synthetic feature rows (n×D), each with its class and its lab (source). */
export interface SyntheticRows {
  x: Float32Array;
  label: Int32Array;
  source: Int32Array;
  n: number;
}

/**
 * n rows of D features: seeded Gaussian noise of standard deviation `noise`, to which `signal` adds row r's own
 * (its features start at x[at]) and answers the row's class and lab.
 */
export function syntheticRows(
  n: number,
  seed: number,
  D: number,
  noise: number,
  signal: (r: number, x: Float32Array, at: number) => { label: number; source: number },
): SyntheticRows {
  const rng = createRng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rng() + 1e-12)) * Math.cos(2 * Math.PI * rng());
  const x = new Float32Array(n * D);
  const label = new Int32Array(n);
  const source = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < D; j++) x[r * D + j] = noise * gauss();
    ({ label: label[r], source: source[r] } = signal(r, x, r * D));
  }
  return { x, label, source, n };
}

/** Training and validation rows as one set for fitFamiliarity, the validation ones marked (isVal). */
export function trainAndVal(train: SyntheticRows, val: SyntheticRows, D: number): LabelledFeatures {
  return {
    x: new Float32Array([...train.x, ...val.x]),
    n: train.n + val.n,
    d: D,
    label: [...train.label, ...val.label],
    source: [...train.source, ...val.source],
    isVal: Uint8Array.from({ length: train.n + val.n }, (_, r) => (r >= train.n ? 1 : 0)),
  };
}

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
