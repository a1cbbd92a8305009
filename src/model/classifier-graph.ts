import { ModelError } from '../errors.js';
import { GraphBuilder, readMetadata } from './onnx/graph-builder.js';

/** A linear head on RAW backbone features (standardisation already folded in): logits = x·Wᵀ + b. */
export interface RawLinearHead {
  /** k×d, row-major */
  weight: Float32Array;
  bias: Float32Array;
  k: number;
  d: number;
}

// The names are pure data (the browser reads them too): in outputs.ts.
export { OUTPUTS } from './outputs.js';
import { OUTPUTS } from './outputs.js';

/**
 * Appends the trained head to a backbone model (a backbone.onnx, or an earlier classifier whose head is
 * replaced), giving the one-file model: input → calibrated probabilities, logits, class activation maps,
 * and the backbone features (kept so the shipped model can serve as the backbone for retraining).
 */
export function buildClassifierModel(
  backbone: Uint8Array,
  head: RawLinearHead,
  options: { temperature: number; classes: string[]; metadata?: Record<string, string> },
): Uint8Array {
  const meta = readMetadata(backbone);
  const dims = (meta['hematovision.feature_dims'] ?? '').split(',').map(Number);
  const d = dims.reduce((a, b) => a + b, 0);
  if (!meta['hematovision.backbone_id'] || d !== head.d) {
    throw new ModelError(`The backbone's features (${d}) do not match the head (${head.d}).`, 'bad_model');
  }
  if (options.classes.length !== head.k)
    throw new ModelError('Class count does not match the head.', 'bad_model');
  const g = new GraphBuilder('hematovision_head', 13, 'head/');
  const w = g.constant('W', head.weight, [head.k, head.d]);
  const b = g.constant('b', head.bias, [head.k]);
  g.op('Gemm', [OUTPUTS.features, w, b], { transB: 1 }, OUTPUTS.logits);
  const scaled = g.op('Div', [OUTPUTS.logits, g.scalar('T', options.temperature)]);
  g.op('Softmax', [scaled], { axis: 1 }, OUTPUTS.probabilities);

  // CAM: the last block's share of each logit, kept per position (mean over positions = that share).
  const last = dims[dims.length - 1];
  const offset = d - last;
  const camW = new Float32Array(head.k * last);
  for (let c = 0; c < head.k; c++) camW.set(head.weight.subarray(c * d + offset, (c + 1) * d), c * last);
  g.op(
    'Conv',
    [OUTPUTS.featureMap, g.constant('camW', camW, [head.k, last, 1, 1])],
    { kernel_shape: [1, 1] },
    OUTPUTS.cam,
  );

  g.output(OUTPUTS.probabilities, ['N', head.k]);
  g.output(OUTPUTS.logits, ['N', head.k]);
  g.output(OUTPUTS.cam, ['N', head.k, 7, 7]);
  return g.mergeInto(backbone, {
    keepOutputs: [OUTPUTS.features, OUTPUTS.featureMap],
    metadata: { ...options.metadata, 'hematovision.classes': options.classes.join(',') },
  });
}
