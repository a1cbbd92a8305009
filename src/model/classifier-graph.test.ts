import { describe, expect, it } from 'vitest';
import { backboneMetadata } from './backbone.js';
import { buildClassifierModel, OUTPUTS } from './classifier-graph.js';
import { GraphBuilder, readMetadata } from './onnx/graph-builder.js';
import { OnnxSession } from './onnx/runtime.js';

/**
 * A stand-in backbone with the real one's interface: a 1×1 conv to 4 channels at 7×7 is the "last block"
 * (feature_map); features = [pooled input (3), pooled feature_map (4)].
 */
function tinyBackbone(): Uint8Array {
  const g = new GraphBuilder('tiny');
  const x = g.input('input', ['N', 3, 224, 224]);
  const small = g.op('AveragePool', [x], { kernel_shape: [32, 32], strides: [32, 32] }); // N,3,7,7
  const w = Float32Array.from({ length: 12 }, (_, i) => ((i * 7) % 5) / 5 - 0.3);
  const fm = g.op('Relu', [g.op('Conv', [small, g.constant('w', w, [4, 3, 1, 1])])], {}, 'feature_map');
  const p1 = g.op('Flatten', [g.op('GlobalAveragePool', [small])], { axis: 1 });
  const p2 = g.op('Flatten', [g.op('GlobalAveragePool', [fm])], { axis: 1 });
  g.op('Concat', [p1, p2], { axis: 1 }, 'features');
  g.output('features', ['N', 7]);
  g.output('feature_map', ['N', 4, 7, 7]);
  return g.toBytes({ metadata: backboneMetadata('f'.repeat(64), ['a', 'b'], [3, 4]) });
}

describe('classifier graph', () => {
  const k = 3;
  const d = 7;
  const weight = Float32Array.from({ length: k * d }, (_, i) => Math.sin(i + 1));
  const bias = Float32Array.from([0.1, -0.2, 0.05]);
  const temperature = 1.7;
  const input = Float32Array.from({ length: 2 * 3 * 224 * 224 }, (_, i) => Math.cos(i * 0.001));

  it('computes logits = features·Wᵀ + b, probabilities = softmax(logits / T), CAM = last block share', async () => {
    const model = buildClassifierModel(
      tinyBackbone(),
      { weight, bias, k, d },
      { temperature, classes: ['a', 'b', 'c'] },
    );
    const s = await OnnxSession.create(model);
    const out = await s.run({ input: { data: input, dims: [2, 3, 224, 224] } }, [
      OUTPUTS.features,
      OUTPUTS.logits,
      OUTPUTS.probabilities,
      OUTPUTS.cam,
    ]);
    const f = out.features.data;
    for (let n = 0; n < 2; n++) {
      const z = [0, 1, 2].map(
        (c) => bias[c] + [...Array(d).keys()].reduce((a, j) => a + f[n * d + j] * weight[c * d + j], 0),
      );
      z.forEach((v, c) => expect(out.logits.data[n * k + c]).toBeCloseTo(v, 4));
      const e = z.map((v) => Math.exp(v / temperature));
      const sum = e.reduce((a, b) => a + b, 0);
      e.forEach((v, c) => expect(out.probabilities.data[n * k + c]).toBeCloseTo(v / sum, 5));
      // The mean of a class's CAM is the last block's contribution to its logit.
      for (let c = 0; c < k; c++) {
        let mean = 0;
        for (let j = 0; j < 49; j++) mean += out.cam.data[(n * k + c) * 49 + j] / 49;
        const share = [3, 4, 5, 6].reduce((a, j) => a + f[n * d + j] * weight[c * d + j], 0);
        expect(mean).toBeCloseTo(share, 4);
      }
    }
    await s.close();
  });

  it('replaces an earlier head instead of stacking a second one', async () => {
    const first = buildClassifierModel(
      tinyBackbone(),
      { weight, bias, k, d },
      { temperature: 1, classes: ['a', 'b', 'c'] },
    );
    const bias2 = Float32Array.from([5, 0, 0]);
    const second = buildClassifierModel(
      first,
      { weight, bias: bias2, k, d },
      { temperature: 1, classes: ['x', 'y', 'z'] },
    );
    expect(readMetadata(second)['hematovision.classes']).toBe('x,y,z');
    const s = await OnnxSession.create(second);
    const out = await s.run({ input: { data: input.subarray(0, 3 * 224 * 224), dims: [1, 3, 224, 224] } }, [
      OUTPUTS.logits,
    ]);
    const s1 = await OnnxSession.create(first);
    const out1 = await s1.run({ input: { data: input.subarray(0, 3 * 224 * 224), dims: [1, 3, 224, 224] } }, [
      OUTPUTS.logits,
    ]);
    expect(out.logits.data[0] - out1.logits.data[0]).toBeCloseTo(5 - 0.1, 4);
    expect(s.outputNames).toHaveLength(new Set(s.outputNames).size);
    await s.close();
    await s1.close();
  });

  it('refuses a head whose size does not match the backbone features', () => {
    expect(() =>
      buildClassifierModel(
        tinyBackbone(),
        { weight, bias, k, d: 5 },
        { temperature: 1, classes: ['a', 'b', 'c'] },
      ),
    ).toThrow(/do not match/);
  });
});
