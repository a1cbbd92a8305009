import * as ort from 'onnxruntime-node';
import { ModelError } from '../../errors.js';
import { startWorker, WorkerCalls } from '../../threads.js';

/** A float32 tensor as plain data, so nothing above this file sees ONNX Runtime types. */
export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

/** What the layers above need of a loaded model: names, run, close. */
export interface InferenceSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, FloatTensor>, outputs: string[]): Promise<Record<string, FloatTensor>>;
  close(): Promise<void>;
}

export interface SessionTuning {
  /**
   * `false` stops idle worker threads from spinning after a run: needed when two sessions (a frozen
   * prefix and a training graph) or JS work alternate on the same two cores.
   */
  spin?: boolean;
  /**
   * OnnxThreadSession only: its thread, and ONNX Runtime's threads it starts, run at low priority
   * (thread-priority.ts): a session for bulk work, which yields the cores to another session's runs.
   */
  lowPriority?: boolean;
}

/**
 * The ONNX Runtime backend, in one file. Two intra-op threads match the target machines; graph optimisation
 * stays on so Conv+Clip fuse. onnxruntime-node runs a model on the calling thread: `OnnxSession` blocks its
 * thread's event loop while it runs, `OnnxThreadSession` runs it in a worker thread instead.
 */
export class OnnxSession implements InferenceSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async create(
    model: string | Uint8Array,
    threads = 2,
    tuning: SessionTuning = {},
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

/** Calls to the session's thread (session-worker.ts): a run, or close (answered with null). */
export type SessionRequest = { feeds: Record<string, FloatTensor>; outputs: string[] } | { close: true };
export type SessionResult = Record<string, FloatTensor> | null;
export interface SessionWorkerData {
  model: Uint8Array;
  threads: number;
  tuning: SessionTuning;
}
/** The thread's first message: the session's names, or why the model did not load. */
export type SessionReady = { inputNames: string[]; outputNames: string[] } | { error: string; code: string };

/**
 * The same session in a worker thread, so a server's event loop keeps parsing requests, decoding images
 * and answering other clients while the network runs. Inputs are copied once to the thread; outputs come
 * back without a copy.
 */
export class OnnxThreadSession implements InferenceSession {
  private constructor(
    private readonly calls: WorkerCalls<SessionRequest, SessionResult>,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  static async create(
    model: Uint8Array,
    threads = 2,
    tuning: SessionTuning = {},
  ): Promise<OnnxThreadSession> {
    const data: SessionWorkerData = { model, threads, tuning };
    const worker = startWorker(import.meta.url, 'session-worker', data);
    // Settles once: the first of its message, an error, or an exit without a word.
    const ready = await new Promise<SessionReady>((resolve) => {
      const died = (e: Error) =>
        resolve({ error: `ONNX Runtime's thread failed: ${e.message}`, code: 'bad_model' });
      const exited = (code: number) =>
        died(new Error(`it exited with code ${code} before loading the model`));
      worker.once('error', died);
      worker.once('exit', exited);
      worker.once('message', (m: SessionReady) => {
        worker.off('error', died);
        worker.off('exit', exited);
        resolve(m);
      });
    });
    if ('error' in ready) {
      await worker.terminate();
      throw new ModelError(ready.error, ready.code);
    }
    const calls = new WorkerCalls<SessionRequest, SessionResult>(worker, {
      failed: (message, code) => new ModelError(message, code),
      died: (reason) => new ModelError(`ONNX Runtime's thread failed: ${reason}`, 'worker_failed'),
      unrefWhenIdle: true,
    });
    return new OnnxThreadSession(calls, ready.inputNames, ready.outputNames);
  }

  async run(feeds: Record<string, FloatTensor>, outputs: string[]): Promise<Record<string, FloatTensor>> {
    const copies: Record<string, FloatTensor> = {};
    // A copy of exactly the view: posting a subarray would clone its whole underlying buffer.
    for (const [k, v] of Object.entries(feeds)) copies[k] = { data: v.data.slice(), dims: v.dims };
    const transfer = Object.values(copies).map((t) => t.data.buffer as ArrayBuffer);
    return (await this.calls.call({ feeds: copies, outputs }, transfer))!;
  }

  async close(): Promise<void> {
    // Lets ORT release the session's native memory before the thread goes.
    await this.calls.call({ close: true }).catch(() => undefined);
    await this.calls.close(new ModelError('The model was closed.', 'closed'));
  }
}
