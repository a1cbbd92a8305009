import * as ort from 'onnxruntime-node';
import { ModelError } from '../../errors.js';

/** A float32 tensor as plain data, so nothing above this file sees ONNX Runtime types. */
export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

/**
 * The ONNX Runtime backend, in one file. Two intra-op threads match the target machines; graph optimisation
 * stays on so Conv+Clip fuse.
 */
export class OnnxSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  /**
   * `spin: false` stops idle worker threads from spinning after a run: needed when two sessions (a frozen
   * prefix and a training graph) or JS work alternate on the same two cores.
   */
  static async create(
    model: string | Uint8Array,
    threads = 2,
    tuning: { spin?: boolean } = {},
  ): Promise<OnnxSession> {
    const options: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionProviders: ['cpu'],
    };
    if (tuning.spin === false) options.extra = { session: { intra_op: { allow_spinning: '0' } } };
    try {
      const session =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, options)
          : await ort.InferenceSession.create(model, options);
      return new OnnxSession(session);
    } catch (e) {
      throw new ModelError(`ONNX Runtime could not load the model: ${(e as Error).message}`, 'bad_model');
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Record<string, FloatTensor>, outputs: string[]): Promise<Record<string, FloatTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor('float32', v.data, v.dims);
    const result = await this.session.run(ortFeeds, outputs);
    const out: Record<string, FloatTensor> = {};
    for (const name of outputs) {
      const t = result[name];
      out[name] = { data: t.data as Float32Array, dims: t.dims.map(Number) };
    }
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
