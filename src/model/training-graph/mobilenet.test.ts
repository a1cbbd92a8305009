import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hasShared, skipNote, TFLITE } from '../../testing/shared.js';
import {
  backboneMetadata,
  DEFAULT_FEATURE_BLOCKS,
  loadTfliteBackbone,
  mobileNetV2Block,
  mobileNetV2Spec,
} from '../backbone.js';
import { buildClassifierModel } from '../classifier-graph.js';
import { buildInferenceGraph } from '../net/forward.js';
import { referenceForward, referenceLoss } from '../net/reference.js';
import { featureDim, specParams } from '../net/spec.js';
import { OnnxSession } from '../onnx/runtime.js';
import { pooledName, TRAIN_IO } from './graphs.js';
import { TrainingSession } from './session.js';
import { seededRandom } from './test-net.js';
import { relativeError } from '../../testing/numeric.js';

if (!hasShared) skipNote('MobileNetV2 training-graph tests', TFLITE);

describe.skipIf(!hasShared)('MobileNetV2 training graph on the real weights', () => {
  const tflite = hasShared ? readFileSync(TFLITE) : Buffer.alloc(0);
  const k = 4;
  const n = 2;
  const rand = seededRandom(11);
  const images = Float32Array.from({ length: n * 3 * 224 * 224 }, () => 2 * rand() - 1);
  const targets = Float32Array.from([0, 1, 0, 0, 0, 0, 0, 1]);
  const spec = hasShared ? mobileNetV2Spec(loadTfliteBackbone(tflite), { classes: k }) : null!;
  if (hasShared) spec.head.weight.forEach((_, i, w) => (w[i] = (rand() - 0.5) * 0.05));
  const feed = { [TRAIN_IO.input]: { data: images, dims: [n, 3, 224, 224] } };

  it('reads 52 convolutions and 10 residual adds into blocks 0–17', () => {
    expect(spec.layers.filter((l) => l.kind === 'conv')).toHaveLength(52);
    expect(spec.layers.filter((l) => l.kind === 'add')).toHaveLength(10);
    expect(featureDim(spec)).toBe(144 + 192 + 576 + 1280);
    expect(mobileNetV2Block('Conv')).toBe(0);
    expect(mobileNetV2Block('expanded_conv/depthwise')).toBe(0);
    expect(mobileNetV2Block('expanded_conv_13/expand')).toBe(13);
    expect(mobileNetV2Block('Conv_1')).toBe(17);
    const stem = spec.layers[0];
    expect(stem.kind === 'conv' && stem.pads).toEqual([0, 0, 1, 1]); // TFLite SAME at stride 2
  });

  it('exports a fine-tuned backbone that the shipped classifier export accepts', async () => {
    const meta = backboneMetadata(
      loadTfliteBackbone(tflite).sha256,
      DEFAULT_FEATURE_BLOCKS,
      [144, 192, 576, 1280],
    );
    const backbone = buildInferenceGraph(spec, { head: false, metadata: meta });
    const head = { weight: spec.head.weight, bias: spec.head.bias, k, d: featureDim(spec) };
    const model = buildClassifierModel(backbone, head, { temperature: 1, classes: ['a', 'b', 'c', 'd'] });
    const classifier = await OnnxSession.create(model);
    const mine = await OnnxSession.create(buildInferenceGraph(spec));
    const a = (await classifier.run(feed, [TRAIN_IO.logits])).logits.data;
    const b = (await mine.run(feed, [TRAIN_IO.logits])).logits.data;
    await Promise.all([classifier.close(), mine.close()]);
    expect(relativeError(a, b)).toBeLessThan(1e-6);
  });

  it('gives the inference graph logits and cross-entropy when training every block', async () => {
    const inference = await OnnxSession.create(buildInferenceGraph(spec));
    const want = (await inference.run(feed, [TRAIN_IO.logits])).logits.data;
    await inference.close();
    const session = await TrainingSession.create(spec, { trainFromBlock: 0 });
    const r = await session.step({ images, n, targets });
    await session.close();
    const rel = relativeError(r.logits, want);
    console.log(
      `MobileNetV2 logits: training vs inference graph, max |Δ| / max |logit| = ${rel.toExponential(1)}`,
    );
    expect(rel).toBeLessThan(1e-4);
    expect(r.loss).toBeCloseTo(referenceLoss(want, n, k, targets), 4);
    expect(r.grads.size).toBe(specParams(spec).length);
    for (const [name, g] of r.grads) expect(g.every(Number.isFinite), name).toBe(true);

    // The fixed-batch graph (GEMM depthwise gradients, one padding row) agrees with the dynamic one.
    const fixed = await TrainingSession.create(spec, { trainFromBlock: 0, batchSize: n + 1 });
    const f = await fixed.step({ images, n, targets });
    await fixed.close();
    expect(f.loss).toBeCloseTo(r.loss, 5);
    for (const [name, g] of r.grads) {
      expect(relativeError(f.grads.get(name)!, g), name).toBeLessThan(1e-4);
    }
  });

  it('matches float64 finite differences on the largest entries of a depthwise kernel', async () => {
    // Train from block 15 with the prefix as its own graph: the float64 reference starts from the same
    // boundary tensors, so finite differences cover exactly the graph's trainable part.
    const session = await TrainingSession.create(spec, { trainFromBlock: 15, frozenPrefix: 'separate' });
    const prefix = await OnnxSession.create(session.graph.prefix!);
    const names = session.graph.prefixOutputs.map((p) => p.name);
    const boundary = await prefix.run(feed, names);
    await prefix.close();
    const r = await session.step({ images, n, targets });
    await session.close();

    const known = new Map<string, Float64Array>();
    const pooled = new Map<string, Float64Array>();
    for (const f of spec.features)
      if (names.includes(pooledName(f))) pooled.set(f, Float64Array.from(boundary[pooledName(f)].data));
    for (const name of names)
      if (!name.endsWith('/pooled')) known.set(name, Float64Array.from(boundary[name].data));
    expect([...known.keys()]).toEqual(['expanded_conv_14/add']);

    const param = 'expanded_conv_15/depthwise/W';
    const grad = r.grads.get(param)!;
    const w0 = Float64Array.from(specParams(spec).find((p) => p.name === param)!.data);
    const loss = (w: Float64Array) =>
      referenceLoss(
        referenceForward(spec, new Float64Array(0), n, { known, pooled, weights: new Map([[param, w]]) })
          .logits,
        n,
        k,
        targets,
      );
    expect(r.loss).toBeCloseTo(loss(w0), 5);
    const top = Array.from(grad.keys())
      .sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a]))
      .slice(0, 3);
    const h = 1e-6;
    for (const i of top) {
      const plus = w0.slice();
      const minus = w0.slice();
      plus[i] += h;
      minus[i] -= h;
      const fd = (loss(plus) - loss(minus)) / (2 * h);
      console.log(
        `${param}[${i}]: ORT ${grad[i].toExponential(6)}, FD ${fd.toExponential(6)}, rel ${Math.abs(grad[i] / fd - 1).toExponential(1)}`,
      );
      expect(Math.abs(grad[i] - fd) / Math.abs(fd)).toBeLessThan(1e-4);
    }
  });
});
