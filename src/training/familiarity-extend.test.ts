/**
 * Widening a parent's familiarity checks to a reviewed lab, on synthetic features: lab A (the parent's) and
 * lab B (reviewed), which varies and sits where A never did, so the parent's checks flag all of B.
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../imaging/random.js';
import { appendReferenceDistance } from '../model/familiarity-graph.js';
import { componentDistances, referenceDistance, type FamiliarityReferences } from '../model/familiarity.js';
import { GraphBuilder } from '../model/onnx/graph-builder.js';
import { OnnxSession } from '../model/onnx/runtime.js';
import type { FamiliarityRecord } from '../model/types.js';
import { extendReference, scaleNewComponents } from './familiarity-extend.js';
import { fitReference, referenceDistances } from './familiarity.js';
import { quantile } from './quantile.js';
import { familiarityFlags, reviewedFamiliarity, reviewedLabScales } from './reviewed-familiarity.js';
import type { CellInfo, CellRows } from './reviewed-recipe.js';

const D = 24;
const K = 3;
const CLASSES = ['a', 'b', 'c'];

/**
 * n cells of a lab: class c at 3·e_c, noise in the first 6 features; `shift` added to features 12…23, and
 * noise of `spread` on features 12…17 (lab A: neither; other labs vary there).
 */
function lab(n: number, seed: number, shift = 0, spread = 0) {
  const rng = createRng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rng() + 1e-12)) * Math.cos(2 * Math.PI * rng());
  const x = new Float32Array(n * D);
  const y = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    y[r] = r % K;
    for (let j = 0; j < D; j++) {
      const noise = j < 6 ? gauss() : j >= 12 && j < 18 ? spread * gauss() : 0.05 * gauss();
      x[r * D + j] = noise + (j === y[r] ? 3 : 0) + (j >= 12 ? shift : 0);
    }
  }
  return { x, y, n };
}

const rowsOf = (n: number) => Array.from({ length: n }, (_, i) => i);
const rate = (f: Uint8Array) => f.reduce((s, v) => s + v, 0) / f.length;

describe('widening familiarity checks to a reviewed lab', () => {
  const a = lab(900, 1);
  const aVal = lab(300, 2);
  const cell = fitReference(a.x, a.n, D, a.y, CLASSES, { columns: [0, D], rank: 16 });
  const image = fitReference(a.x, a.n, D, new Int32Array(a.n), ['lab A'], { columns: [0, 18], rank: 14 });
  const refs: FamiliarityReferences = { cell, image };
  const check = (ref: typeof cell, q: number) => ({
    threshold: quantile(referenceDistances(ref, aVal.x, D, rowsOf(aVal.n)), q),
    quantile: q,
    columns: ref.columns,
    components: ref.components,
    rank: ref.invSqrtEig.length,
  });
  const fam: FamiliarityRecord = { method: 'test', cell: check(cell, 0.975), image: check(image, 0.99) };

  // 20 reviewed cells per class of lab B, one image each.
  const reviewed = lab(60, 3, 2, 0.7);
  const rows: CellRows = { x: reviewed.x, d: D, cell: Int32Array.from(rowsOf(60)), view: new Int32Array(60) };
  const cells: CellInfo[] = rowsOf(60).map((i) => ({ labelIndex: reviewed.y[i], group: `img${i}` }));
  const scales = reviewedLabScales(refs, fam, rows, cells, rowsOf(60), CLASSES, 1);
  const widened = reviewedFamiliarity({ refs, fam }, CLASSES, rows, cells, rowsOf(60), scales);

  it("stops flagging the reviewed lab's new cells, keeps its parent's lab and still flags a third lab", () => {
    const bNew = lab(600, 4, 2, 0.7);
    const cLab = lab(300, 5, -2, 0.7);
    const parentFlags = (s: { x: Float32Array; n: number }) => familiarityFlags(refs, fam, s.x, s.n, D);
    const widenedFlags = (s: { x: Float32Array; n: number }) => widened.flags(s.x, s.n, D);
    expect(rate(parentFlags(bNew))).toBeGreaterThan(0.95);
    expect(rate(widenedFlags(bNew))).toBeLessThan(0.15);
    // The parent's lab: never flagged more than before (its components and thresholds are kept; the widened
    // covariance and the reviewed lab's components only bring rows nearer). Here it drops from ~3 % to ~0 %:
    // the checks get looser on the parent's lab too (BENCHMARKS: 6.2 → 4.4 % of Kaggle validation cells).
    expect(rate(parentFlags(aVal))).toBeGreaterThan(0.02);
    expect(rate(widenedFlags(aVal))).toBeLessThanOrEqual(rate(parentFlags(aVal)));
    expect(rate(widenedFlags(cLab))).toBeGreaterThan(0.95);
    expect(scales.cell).toBeLessThanOrEqual(1);
    expect(scales.image).toBeLessThanOrEqual(1);
    expect(widened.record.cell.components).toEqual([
      ...CLASSES,
      'a (reviewed lab)',
      'b (reviewed lab)',
      'c (reviewed lab)',
    ]);
    expect(widened.record.image.components).toEqual(['lab A', 'reviewed lab']);
    expect(widened.record.reviewedLab).toMatchObject({ name: 'reviewed lab', cells: 60, scales });
  });

  it("never moves the parent's lab further from the parent's centres", () => {
    const wide = extendReference(cell, reviewed.x, 60, D, reviewed.y, ['a2', 'b2', 'c2']);
    for (let r = 0; r < aVal.n; r++) {
      const before = componentDistances(cell, aVal.x, D, r);
      const after = componentDistances(wide, aVal.x, D, r);
      for (let c = 0; c < K; c++) expect(after[c]).toBeLessThanOrEqual(before[c] * 1.02 + 1e-6);
    }
  });

  it('computes the scaled distances inside an ONNX graph as the reference implementation does', async () => {
    const scaled = scaleNewComponents(
      extendReference(cell, reviewed.x, 60, D, reviewed.y, ['a2', 'b2', 'c2']),
      3,
      0.25,
    );
    const g = new GraphBuilder('familiarity_scales_test', 13);
    g.input('features', ['N', D]);
    appendReferenceDistance(g, 'features', scaled, 'out');
    g.output('out', ['N']);
    const session = await OnnxSession.create(g.toBytes());
    const probe = lab(20, 6, 2, 0.7);
    const out = await session.run({ features: { data: probe.x, dims: [20, D] } }, ['out']);
    await session.close();
    for (let r = 0; r < 20; r++) {
      const want = referenceDistance(scaled, probe.x, D, r);
      expect(Math.abs(out.out.data[r] - want)).toBeLessThan(1e-3 * Math.max(1, want));
    }
    // The scale is applied: the nearest new component's distance is a quarter of its unscaled one.
    const unscaled = scaleNewComponents(scaled, 3, 1);
    expect(componentDistances(scaled, probe.x, D, 0)[3]).toBeCloseTo(
      componentDistances(unscaled, probe.x, D, 0)[3] / 4,
      5,
    );
  });
});
