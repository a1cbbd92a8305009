import { ModelError } from '../../errors.js';
import { OnnxSession, type FloatTensor } from '../onnx/runtime.js';
import {
  buildTrainingGraph,
  gradName,
  TRAIN_IO,
  type TrainingGraph,
  type TrainingGraphOptions,
} from './graphs.js';
import type { NetSpec, ParamInfo } from '../net/spec.js';

export interface TrainBatch {
  /** [n, C, H, W] images, already normalised as the backbone expects. */
  images: Float32Array;
  n: number;
  /** [n, k] one-hot (or soft) targets, before label smoothing. */
  targets: Float32Array;
  /** [k]; ones when absent. */
  classWeights?: Float32Array;
  /** [n], e.g. per-source weights; ones when absent. */
  sampleWeights?: Float32Array;
}

export interface TrainStepResult {
  loss: number;
  /** [n, k] */
  logits: Float32Array;
  /** Gradient of every trainable parameter, by name. */
  grads: Map<string, Float32Array>;
  /** Σₙ sₙ of the batch: the weight to give this batch when accumulating gradients across batches. */
  weightSum: number;
}

/**
 * Runs a training graph with ONNX Runtime. The trainable parameters are the spec's own arrays: an optimizer
 * that updates them in place is seen by the next step without rebuilding anything.
 */
export class TrainingSession {
  private constructor(
    readonly spec: NetSpec,
    readonly graph: TrainingGraph,
    private readonly session: OnnxSession,
    private readonly prefix: OnnxSession | null,
  ) {}

  /**
   * `spin` (off by default) lets ORT's idle threads spin between runs: on two shared cores, with a prefix
   * graph, an optimizer and augmentation workers taking turns, spinning only steals their time.
   */
  static async create(
    spec: NetSpec,
    options: TrainingGraphOptions & { threads?: number; spin?: boolean } = {},
  ): Promise<TrainingSession> {
    const graph = buildTrainingGraph(spec, options);
    const tuning = { spin: options.spin ?? false };
    const session = await OnnxSession.create(graph.model, options.threads ?? 2, tuning);
    const prefix = graph.prefix ? await OnnxSession.create(graph.prefix, options.threads ?? 2, tuning) : null;
    return new TrainingSession(spec, graph, session, prefix);
  }

  get trainable(): ParamInfo[] {
    return this.graph.trainable;
  }

  async step(batch: TrainBatch): Promise<TrainStepResult> {
    const { n } = batch;
    const k = this.graph.classes;
    const { channels, height, width } = this.spec.input;
    const pixels = channels * height * width;
    if (batch.images.length !== n * pixels || batch.targets.length !== n * k) {
      throw new ModelError(
        `A batch of ${n} needs ${n}×${channels}×${height}×${width} pixels and ${n}×${k} targets.`,
        'bad_batch',
      );
    }
    const fixed = this.graph.batchSize;
    if (fixed !== undefined && n > fixed) {
      throw new ModelError(
        `This training graph takes batches of at most ${fixed} images, not ${n}.`,
        'bad_batch',
      );
    }
    const classWeights = batch.classWeights ?? new Float32Array(k).fill(1);
    const sampleWeights = batch.sampleWeights ?? new Float32Array(n).fill(1);
    let weightSum = 0;
    for (let b = 0; b < n; b++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += classWeights[c] * batch.targets[b * k + c];
      weightSum += s * sampleWeights[b];
    }
    if (!(weightSum > 0))
      throw new ModelError('The batch has zero total weight: nothing to learn from.', 'bad_batch');

    // A fixed-size graph gets short batches padded with rows of zero targets: weight 0, no effect on anything.
    const m = fixed ?? n;
    const pad = (a: Float32Array, per: number) => {
      if (m === n) return a;
      const out = new Float32Array(m * per);
      out.set(a);
      return out;
    };
    const image: FloatTensor = { data: pad(batch.images, pixels), dims: [m, channels, height, width] };
    const feeds: Record<string, FloatTensor> = {
      [TRAIN_IO.targets]: { data: pad(batch.targets, k), dims: [m, k] },
      [TRAIN_IO.classWeights]: { data: classWeights, dims: [k] },
      [TRAIN_IO.sampleWeights]: { data: pad(sampleWeights, 1), dims: [m] },
    };
    if (this.prefix) {
      const wanted = this.graph.prefixOutputs.map((p) => p.name).filter((p) => p !== this.spec.input.name);
      Object.assign(feeds, await this.prefix.run({ [TRAIN_IO.input]: image }, wanted));
      if (wanted.length < this.graph.prefixOutputs.length) feeds[this.spec.input.name] = image;
    } else {
      feeds[TRAIN_IO.input] = image;
    }
    for (const p of this.graph.trainable) feeds[p.name] = { data: p.data, dims: p.dims };
    const outNames = [TRAIN_IO.loss, TRAIN_IO.logits, ...this.graph.trainable.map((p) => gradName(p.name))];
    const out = await this.session.run(feeds, outNames);
    const grads = new Map(this.graph.trainable.map((p) => [p.name, out[gradName(p.name)].data]));
    const logits = out[TRAIN_IO.logits].data.subarray(0, n * k);
    return { loss: out[TRAIN_IO.loss].data[0], logits, grads, weightSum };
  }

  async close(): Promise<void> {
    await this.session.close();
    await this.prefix?.close();
  }
}
