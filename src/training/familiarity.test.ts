import { describe, expect, it } from 'vitest';
import { createRng } from '../imaging/random.js';
import { appendReferenceDistance } from '../model/familiarity-graph.js';
import { referenceDistance } from '../model/familiarity.js';
import { GraphBuilder } from '../model/onnx/graph-builder.js';
import { OnnxSession } from '../model/onnx/runtime.js';
import { fitReference, referenceDistances } from './familiarity.js';
import { quantile } from './quantile.js';
import { symmetricEigen, topEigen } from './linalg.js';

/** n rows of D features: class c centred at 3·e_c, noise mostly in the first `spread` dimensions. */
function clusters(n: number, D: number, k: number, seed: number, spread = 6) {
  const rng = createRng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rng() + 1e-12)) * Math.cos(2 * Math.PI * rng());
  const x = new Float32Array(n * D);
  const y = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    y[r] = r % k;
    for (let j = 0; j < D; j++) x[r * D + j] = (j < spread ? gauss() : 0.05 * gauss()) + (j === y[r] ? 3 : 0);
  }
  return { x, y };
}

describe('linear algebra', () => {
  it('finds the top eigenpairs of a symmetric matrix as the full Jacobi decomposition does', () => {
    const n = 40;
    const rng = createRng(3);
    const b = Float64Array.from({ length: n * n }, () => rng() - 0.5);
    const a = new Float64Array(n * n); // a = bᵀb (PSD)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] += b[k * n + i] * b[k * n + j];
    const full = symmetricEigen(a, n);
    const top = topEigen(a, n, 5, { iterations: 8 });
    for (let i = 0; i < 5; i++) expect(top.values[i]).toBeCloseTo(full.values[i], 6);
    // Each returned vector is an eigenvector: ‖a·v − λv‖ small.
    for (let j = 0; j < 5; j++) {
      let err = 0;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a[i * n + k] * top.vectors[k * 5 + j];
        err += (s - top.values[j] * top.vectors[i * 5 + j]) ** 2;
      }
      expect(Math.sqrt(err)).toBeLessThan(1e-3 * full.values[0]);
    }
  });
});

describe('familiarity reference', () => {
  const D = 24;
  const k = 3;
  const train = clusters(900, D, k, 1);
  const ref = fitReference(train.x, 900, D, train.y, ['a', 'b', 'c'], { columns: [0, D], rank: 8 });

  it('puts rows like the training data near 1 and flags rows unlike it', () => {
    const val = clusters(300, D, k, 2);
    const inDist = referenceDistances(
      ref,
      val.x,
      D,
      Array.from({ length: 300 }, (_, i) => i),
    );
    const q = quantile(inDist, 0.975);
    expect(quantile(inDist, 0.5)).toBeGreaterThan(0.5);
    expect(quantile(inDist, 0.5)).toBeLessThan(1.5);
    // A row far along a direction the classes vary in, and one that moves where training never varied.
    const far = val.x.slice(0, D);
    far[4] += 12;
    const offSubspace = val.x.slice(0, D);
    for (let j = 10; j < D; j++) offSubspace[j] += 1;
    expect(referenceDistance(ref, far, D, 0)).toBeGreaterThan(q);
    expect(referenceDistance(ref, offSubspace, D, 0)).toBeGreaterThan(10 * q);
  });

  it('computes the same distance inside an ONNX graph', async () => {
    const g = new GraphBuilder('familiarity_test', 13);
    g.input('features', ['N', D]);
    const half = fitReference(train.x, 900, D, train.y, ['a', 'b', 'c'], { columns: [4, 20], rank: 5 });
    appendReferenceDistance(g, 'features', ref, 'whole');
    appendReferenceDistance(g, 'features', half, 'part');
    g.output('whole', ['N']);
    g.output('part', ['N']);
    const session = await OnnxSession.create(g.toBytes());
    const rows = clusters(20, D, k, 5);
    rows.x.set(new Float32Array(D).fill(2), 0); // an outlier in row 0
    const out = await session.run({ features: { data: rows.x, dims: [20, D] } }, ['whole', 'part']);
    await session.close();
    for (let r = 0; r < 20; r++) {
      const whole = referenceDistance(ref, rows.x, D, r);
      const part = referenceDistance(half, rows.x, D, r);
      expect(Math.abs(out.whole.data[r] - whole)).toBeLessThan(1e-3 * Math.max(1, whole));
      expect(Math.abs(out.part.data[r] - part)).toBeLessThan(1e-3 * Math.max(1, part));
    }
  });

  it('refuses a component with fewer than two rows', () => {
    expect(() =>
      fitReference(train.x, 4, D, Int32Array.of(0, 0, 0, 1), ['a', 'b'], { columns: [0, D], rank: 2 }),
    ).toThrow(/two rows of 'b'/);
  });
});
