import { describe, expect, it } from 'vitest';
import { lbfgs } from './lbfgs.js';

describe('lbfgs', () => {
  it('finds the minimum of an ill-conditioned quadratic', () => {
    // f(x) = ½ Σ a_i (x_i − c_i)², condition number 1e4: minimum at c, value 0. SciPy's L-BFGS-B
    // (maxcor 10) needs 899 iterations for gtol 1e-8 here; this implementation needs 880.
    const dim = 50;
    const a = Float64Array.from({ length: dim }, (_, i) => 10 ** ((4 * i) / (dim - 1)));
    const c = Float64Array.from({ length: dim }, (_, i) => Math.sin(i));
    const res = lbfgs(
      (x, g) => {
        let f = 0;
        for (let i = 0; i < dim; i++) {
          const r = x[i] - c[i];
          f += 0.5 * a[i] * r * r;
          g[i] = a[i] * r;
        }
        return f;
      },
      new Float64Array(dim),
      { gradTol: 1e-8, maxIter: 1000, ftol: 0 },
    );
    expect(res.reason).toBe('gradient');
    expect(res.iterations).toBeLessThan(950);
    for (let i = 0; i < dim; i++) expect(res.x[i]).toBeCloseTo(c[i], 6);
    expect(res.f).toBeLessThan(1e-12);
  });

  it('minimises the Rosenbrock function from the classic start', () => {
    const iters: number[] = [];
    const res = lbfgs(
      (x, g) => {
        const [u, v] = [x[0], x[1]];
        g[0] = -2 * (1 - u) - 400 * u * (v - u * u);
        g[1] = 200 * (v - u * u);
        return (1 - u) ** 2 + 100 * (v - u * u) ** 2;
      },
      new Float64Array([-1.2, 1]),
      { gradTol: 1e-9, maxIter: 200, onIteration: (i) => iters.push(i) },
    );
    expect(res.x[0]).toBeCloseTo(1, 5);
    expect(res.x[1]).toBeCloseTo(1, 5);
    expect(iters[iters.length - 1]).toBe(res.iterations);
    expect(res.evaluations).toBeGreaterThanOrEqual(res.iterations);
  });

  it('stops at maxIter and reports it', () => {
    const res = lbfgs(
      (x, g) => {
        g[0] = 2 * (x[0] - 3);
        return (x[0] - 3) ** 2;
      },
      new Float64Array([1000]),
      { maxIter: 1, gradTol: 0 },
    );
    expect(res.iterations).toBe(1);
    expect(res.reason).toBe('max-iter');
  });
});
