import { HematoError } from '../errors.js';
import type { ParamInfo } from '../model/net/spec.js';

/** A tensor the optimizer updates in place. */
export interface Parameter {
  name: string;
  data: Float32Array;
  /** Whether weight decay applies. */
  decay: boolean;
}

export type Gradients = ReadonlyMap<string, Float32Array>;

/**
 * Optimizer parameters from a training graph's trainable tensors. No weight decay on biases (they set
 * offsets, not capacity) nor, by default, on depthwise kernels: 9 numbers per channel, which decay shrinks
 * towards dead channels (TF-slim's MobileNet training leaves them unregularised too).
 */
export function parametersFrom(
  params: readonly ParamInfo[],
  options: { decayDepthwise?: boolean } = {},
): Parameter[] {
  return params.map((p) => ({
    name: p.name,
    data: p.data,
    decay:
      p.kind === 'conv' || p.kind === 'head_weight' || (p.kind === 'depthwise' && !!options.decayDepthwise),
  }));
}

export interface ScheduleOptions {
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  /** Learning rate at the end of the cosine; 0 unless given. */
  final?: number;
}

/** Linear warm-up to `peak` over `warmupSteps` (step 0 already gets peak/warmupSteps), then cosine to `final`. */
export function warmupCosine(step: number, o: ScheduleOptions): number {
  const final = o.final ?? 0;
  if (step < o.warmupSteps) return (o.peak * (step + 1)) / o.warmupSteps;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, (step - o.warmupSteps) / span);
  return final + (o.peak - final) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

export interface OptimizerState {
  step: number;
  /** Per parameter: AdamW's first and second moments. */
  buffers: Record<string, Float32Array[]>;
}

export interface Optimizer {
  readonly stepCount: number;
  /** One update of every parameter with these gradients at learning rate `lr`. */
  step(grads: Gradients, lr: number): void;
  saveState(): OptimizerState;
  loadState(state: OptimizerState): void;
}

function gradFor(grads: Gradients, p: Parameter): Float32Array {
  const g = grads.get(p.name);
  if (!g || g.length !== p.data.length) {
    throw new HematoError(`No gradient of the right size for ${p.name}.`, 'bad_gradients', 500);
  }
  return g;
}

abstract class BufferedOptimizer implements Optimizer {
  protected t = 0;
  protected readonly buffers: Map<string, Float32Array[]>;

  constructor(
    protected readonly params: readonly Parameter[],
    perParam: number,
  ) {
    this.buffers = new Map(
      params.map((p) => [p.name, Array.from({ length: perParam }, () => new Float32Array(p.data.length))]),
    );
  }

  get stepCount(): number {
    return this.t;
  }

  abstract step(grads: Gradients, lr: number): void;

  saveState(): OptimizerState {
    return {
      step: this.t,
      buffers: Object.fromEntries([...this.buffers].map(([k, v]) => [k, v.map((b) => b.slice())])),
    };
  }

  loadState(state: OptimizerState): void {
    for (const [name, bufs] of this.buffers) {
      const saved = state.buffers[name];
      if (!saved || saved.length !== bufs.length || saved.some((s, i) => s.length !== bufs[i].length)) {
        throw new HematoError(
          `The optimizer state does not match parameter ${name}.`,
          'bad_optimizer_state',
          500,
        );
      }
      saved.forEach((s, i) => bufs[i].set(s));
    }
    this.t = state.step;
  }
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled: p ← p·(1 − lr·wd) before the Adam step, as PyTorch's AdamW. */
  weightDecay?: number;
}

/** AdamW (Loshchilov & Hutter), with PyTorch's bias correction and ε placement. */
export class AdamW extends BufferedOptimizer {
  private readonly o: Required<AdamWOptions>;

  constructor(params: readonly Parameter[], options: AdamWOptions = {}) {
    super(params, 2);
    this.o = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, ...options };
  }

  step(grads: Gradients, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.o;
    this.t++;
    const stepSize = lr / (1 - beta1 ** this.t);
    const rootBc2 = Math.sqrt(1 - beta2 ** this.t);
    for (const p of this.params) {
      const g = gradFor(grads, p);
      const [m, v] = this.buffers.get(p.name)!;
      const w = p.data;
      const shrink = p.decay ? 1 - lr * weightDecay : 1;
      for (let i = 0; i < w.length; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        w[i] = w[i] * shrink - (stepSize * m[i]) / (Math.sqrt(v[i]) / rootBc2 + eps);
      }
    }
  }
}

/**
 * Sums gradients of several batches, each weighted by its total sample weight, so the result is the gradient
 * of one large batch: Σ W_b·g_b / Σ W_b.
 */
export class GradientAccumulator {
  private readonly sums = new Map<string, Float32Array>();
  private total = 0;
  private batches = 0;

  add(grads: Gradients, weight = 1): void {
    if (!(weight > 0)) throw new HematoError('A batch must have a positive weight.', 'bad_gradients', 500);
    for (const [name, g] of grads) {
      let s = this.sums.get(name);
      if (!s) this.sums.set(name, (s = new Float32Array(g.length)));
      else if (s.length !== g.length)
        throw new HematoError(`Gradient ${name} changed size.`, 'bad_gradients', 500);
      for (let i = 0; i < g.length; i++) s[i] += weight * g[i];
    }
    this.total += weight;
    this.batches++;
  }

  get count(): number {
    return this.batches;
  }

  /** The weighted mean gradient (new arrays). */
  mean(): Map<string, Float32Array> {
    if (this.batches === 0) throw new HematoError('No gradients were accumulated.', 'bad_gradients', 500);
    return new Map([...this.sums].map(([k, s]) => [k, s.map((v) => v / this.total)]));
  }

  reset(): void {
    for (const s of this.sums.values()) s.fill(0);
    this.total = 0;
    this.batches = 0;
  }
}
