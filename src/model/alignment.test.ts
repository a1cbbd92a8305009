import { describe, expect, it } from 'vitest';
import {
  alignableConvs,
  alignmentAffine,
  ChannelStatsRunner,
  foldChannelAffine,
  statsMismatch,
  type LayerStats,
} from './alignment.js';
import { backboneMetadata } from './backbone.js';
import { buildInferenceGraph } from './net/forward.js';
import { smallTestSpec, seededRandom } from './training-graph/test-net.js';

const DIMS: [number, number, number] = [3, 20, 20];
const N = 64;

/** n random 20×20 images: per-channel gain and offset give two "labs" different colour and contrast. */
function images(seed: number, gain: number[], offset: number[]): Float32Array {
  const rand = seededRandom(seed);
  const hw = 400;
  const out = new Float32Array(N * 3 * hw);
  for (let i = 0; i < N; i++)
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < hw; p++) out[(i * 3 + c) * hw + p] = gain[c] * (2 * rand() - 1) + offset[c];
  return out;
}

const tinyModel = () => {
  const spec = smallTestSpec(3, 0);
  return buildInferenceGraph(spec, {
    head: false,
    metadata: backboneMetadata('test', spec.features, [12, 8]),
  });
};

/** Statistics of the images (with `normalizeTo`, each layer's input aligned first: batch norm on the batch). */
async function measure(model: Uint8Array, x: Float32Array, normalizeTo?: LayerStats): Promise<LayerStats> {
  const r = await ChannelStatsRunner.create(model, 1, normalizeTo);
  try {
    // In two batches, so the float64 totals across batches are exercised.
    await r.run(x.subarray(0, (N / 2) * 1200), N / 2, DIMS);
    await r.run(x.subarray((N / 2) * 1200), N / 2, DIMS);
    return r.stats();
  } finally {
    await r.close();
  }
}

describe('alignment of a folded-batch-norm network', () => {
  it('finds every convolution of the backbone in graph order', () => {
    const convs = alignableConvs(tinyModel());
    expect(convs.map((c) => c.name)).toEqual(
      smallTestSpec(3, 0)
        .layers.filter((l) => l.kind === 'conv')
        .map((l) => l.name),
    );
    expect(convs[0].channels).toBe(8);
  });

  it('measures channel statistics that match a direct computation', async () => {
    const model = tinyModel();
    const x = new Float32Array(N * 1200).fill(0);
    const stats = await measure(model, x);
    const spec = smallTestSpec(3, 0);
    const stem = spec.layers[0];
    if (stem.kind !== 'conv') throw new Error('stem');
    // A zero image gives the bias everywhere (padding adds zeros too): mean = bias, variance 0.
    const s = stats.get('stem')!;
    for (let c = 0; c < 8; c++) {
      expect(s.mean[c]).toBeCloseTo(stem.bias[c], 5);
      expect(s.variance[c]).toBeLessThan(1e-5);
    }
  });

  it("after alignment the target images' per-channel statistics match the reference", async () => {
    const model = tinyModel();
    const source = images(1, [1, 0.8, 0.6], [0, 0.1, -0.1]);
    const target = images(2, [0.3, 0.5, 0.2], [0.5, -0.4, 0.3]); // another stain and contrast
    const reference = await measure(model, source);
    const before = await measure(model, target);
    expect(statsMismatch(before, reference).medianMean).toBeGreaterThan(0.2); // the labs really differ

    // One pass measuring each layer with its input already aligned (batch norm on the batch), folded in,
    // then one pass of measure-then-fold to take out what per-batch statistics left.
    let aligned = foldChannelAffine(
      model,
      alignmentAffine(await measure(model, target, reference), reference).affine,
    );
    aligned = foldChannelAffine(aligned, alignmentAffine(await measure(aligned, target), reference).affine);
    const after = await measure(aligned, target);
    // Channels with real spread on both sides: one that the clip nearly kills on either side (std ~0.001,
    // activations are ~1–10) is out of reach of a clamped scale.
    let worstMean = 0;
    let worstStd = 0;
    let checked = 0;
    for (const [name, cur] of after)
      for (let c = 0; c < cur.mean.length; c++) {
        const S = Math.sqrt(reference.get(name)!.variance[c]);
        if (!(Math.sqrt(before.get(name)!.variance[c]) > 0.01 && S > 0.01)) continue;
        checked++;
        worstMean = Math.max(worstMean, Math.abs(cur.mean[c] - reference.get(name)!.mean[c]) / S);
        worstStd = Math.max(worstStd, Math.abs(Math.sqrt(cur.variance[c]) / S - 1));
      }
    expect(checked).toBeGreaterThan(70);
    expect(worstMean).toBeLessThan(0.02);
    expect(worstStd).toBeLessThan(0.02);
    expect(statsMismatch(after, reference).medianMean).toBeLessThan(1e-3);
    // The reference images' own statistics moved: the network was changed, not the measurement.
    expect(statsMismatch(await measure(aligned, source), reference).medianMean).toBeGreaterThan(0.05);
  });

  it('measuring every layer at once, unaligned, and folding overshoots: the sequential measurement matters', async () => {
    const model = tinyModel();
    const reference = await measure(model, images(1, [1, 0.8, 0.6], [0, 0.1, -0.1]));
    const target = images(2, [0.3, 0.5, 0.2], [0.5, -0.4, 0.3]);
    const naive = foldChannelAffine(model, alignmentAffine(await measure(model, target), reference).affine);
    const sequential = foldChannelAffine(
      model,
      alignmentAffine(await measure(model, target, reference), reference).affine,
    );
    const off = async (m: Uint8Array) => statsMismatch(await measure(m, target), reference).medianMean;
    expect(await off(sequential)).toBeLessThan(0.05);
    expect(await off(naive)).toBeGreaterThan(5 * (await off(sequential)));
  });

  it('moves only the mean of a channel with no spread, and clamps extreme scales', () => {
    const one = (mean: number, variance: number): LayerStats =>
      new Map([['l', { mean: Float64Array.of(mean), variance: Float64Array.of(variance) }]]);
    const dead = alignmentAffine(one(2, 0), one(1, 4));
    expect(dead.affine.get('l')!.scale[0]).toBe(1);
    expect(dead.affine.get('l')!.shift[0]).toBe(-1);
    expect(dead.clamped).toBe(1);
    const wild = alignmentAffine(one(0, 1e-4), one(0, 100));
    expect(wild.affine.get('l')!.scale[0]).toBe(10);
    expect(() => alignmentAffine(one(0, 1), new Map())).toThrow(/do not describe layer l/);
  });
});
