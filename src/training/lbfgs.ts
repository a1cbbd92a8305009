/**
 * Limited-memory BFGS for smooth unconstrained minimisation, written for the softmax head: every
 * function evaluation is a full pass over the features, so the line search accepts the unit step
 * whenever Armijo's condition holds and only backtracks (by safeguarded quadratic interpolation) when
 * it does not. Curvature pairs with s·y ≤ 0 are skipped, which keeps the inverse-Hessian estimate
 * positive definite without a Wolfe search.
 */

/** Writes the gradient at `x` into `grad` and returns the function value. */
export type ObjectiveFn = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  /** Maximum number of iterations (accepted steps). Default 200. */
  maxIter?: number;
  /** Stop when the largest absolute gradient entry is at most this. Default 1e-5. */
  gradTol?: number;
  /** Stop when an iteration lowers f by less than ftol·max(|f|, 1). Default 1e-12. */
  ftol?: number;
  /** Number of curvature pairs kept. Default 10. */
  memory?: number;
  onIteration?(iter: number, f: number, gradMax: number): void;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  gradMax: number;
  iterations: number;
  evaluations: number;
  /** Why it stopped. 'line-search' means no step lowered f: usually f is flat to rounding error. */
  reason: 'gradient' | 'ftol' | 'max-iter' | 'line-search';
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m) m = v;
  }
  return m;
}

export function lbfgs(fg: ObjectiveFn, x0: Float64Array, options: LbfgsOptions = {}): LbfgsResult {
  const maxIter = options.maxIter ?? 200;
  const gradTol = options.gradTol ?? 1e-5;
  const ftol = options.ftol ?? 1e-12;
  const m = options.memory ?? 10;
  const dim = x0.length;

  const x = Float64Array.from(x0);
  const g = new Float64Array(dim);
  const xNew = new Float64Array(dim);
  const gNew = new Float64Array(dim);
  const dir = new Float64Array(dim);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);

  let f = fg(x, g);
  let evaluations = 1;
  if (!Number.isFinite(f)) throw new Error(`Objective is not finite at the starting point (${f}).`);
  let gmax = maxAbs(g);
  let iter = 0;
  let reason: LbfgsResult['reason'] = 'max-iter';
  if (gmax <= gradTol) reason = 'gradient';

  while (reason === 'max-iter' && iter < maxIter) {
    // Two-loop recursion: dir = −H·g.
    for (let i = 0; i < dim; i++) dir[i] = -g[i];
    const h = S.length;
    for (let j = h - 1; j >= 0; j--) {
      alpha[j] = rho[j] * dot(S[j], dir);
      const yj = Y[j];
      const a = alpha[j];
      for (let i = 0; i < dim; i++) dir[i] -= a * yj[i];
    }
    let step = 1;
    if (h > 0) {
      const gamma = dot(S[h - 1], Y[h - 1]) / dot(Y[h - 1], Y[h - 1]);
      for (let i = 0; i < dim; i++) dir[i] *= gamma;
    } else {
      // No curvature yet: a gradient step of length ≤ 1 in the parameter space.
      step = Math.min(1, 1 / Math.sqrt(dot(g, g)));
    }
    for (let j = 0; j < h; j++) {
      const b = rho[j] * dot(Y[j], dir);
      const sj = S[j];
      const c = alpha[j] - b;
      for (let i = 0; i < dim; i++) dir[i] += c * sj[i];
    }

    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Memory went stale (rounding): restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      for (let i = 0; i < dim; i++) dir[i] = -g[i];
      slope = -dot(g, g);
      step = Math.min(1, 1 / Math.sqrt(-slope));
    }

    // Backtracking line search on Armijo's sufficient-decrease condition.
    let fNew = NaN;
    let accepted = false;
    for (let tries = 0; tries < 30; tries++) {
      for (let i = 0; i < dim; i++) xNew[i] = x[i] + step * dir[i];
      fNew = fg(xNew, gNew);
      evaluations++;
      if (Number.isFinite(fNew) && fNew <= f + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      // Minimiser of the quadratic through f, slope and fNew, kept within [0.1, 0.5] of the step.
      const q = Number.isFinite(fNew) ? (-slope * step * step) / (2 * (fNew - f - slope * step)) : 0;
      step = Math.min(0.5 * step, Math.max(0.1 * step, q));
    }
    if (!accepted) {
      reason = 'line-search';
      break;
    }

    const s = new Float64Array(dim);
    const y = new Float64Array(dim);
    for (let i = 0; i < dim; i++) {
      s[i] = xNew[i] - x[i];
      y[i] = gNew[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * dot(y, y)) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }

    const fOld = f;
    x.set(xNew);
    g.set(gNew);
    f = fNew;
    gmax = maxAbs(g);
    iter++;
    options.onIteration?.(iter, f, gmax);
    if (gmax <= gradTol) reason = 'gradient';
    else if (fOld - f <= ftol * Math.max(Math.abs(f), 1)) reason = 'ftol';
  }
  return { x, f, gradMax: gmax, iterations: iter, evaluations, reason };
}
