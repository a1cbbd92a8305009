import * as ort from 'onnxruntime-node';
import type { Worker } from 'node:worker_threads';
import { ModelError } from '../../errors.js';
import { startWorker } from '../../threads.js';

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

/** Messages to and from the session's thread (session-worker.ts). */
export type SessionRequest =
  { id: number; feeds: Record<string, FloatTensor>; outputs: string[] } | { id: number; close: true };
interface SessionDone {
  id: number;
  /** absent for `close` */
  outputs?: Record<string, FloatTensor>;
}
export type SessionReply = SessionDone | { id: number; error: string; code?: string };
export interface SessionWorkerData {
  model: Uint8Array;
  threads: number;
  tuning: SessionTuning;
}

/**
 * The same session in a worker thread, so a server's event loop keeps parsing requests, decoding images
 * and answering other clients while the network runs. Inputs are copied once to the thread; outputs come
 * back without a copy.
 */
export class OnnxThreadSession implements InferenceSession {
  private readonly pending = new Map<
    number,
    { resolve: (r: SessionDone) => void; reject: (e: Error) => void }
  >();
  private next = 1;
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
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
    const names = await new Promise<{ inputNames: string[]; outputNames: string[] }>((resolve, reject) => {
      const failed = (e: Error) =>
        reject(new ModelError(`ONNX Runtime's thread failed: ${e.message}`, 'bad_model'));
      worker.once('error', failed);
      worker.once(
        'message',
        (m: { inputNames: string[]; outputNames: string[] } | { error: string; code: string }) => {
          worker.off('error', failed);
          if ('error' in m) reject(new ModelError(m.error, m.code));
          else resolve(m);
        },
      );
    }).catch(async (e: unknown) => {
      await worker.terminate();
      throw e;
    });
    const session = new OnnxThreadSession(worker, names.inputNames, names.outputNames);
    session.listen();
    return session;
  }

  private listen(): void {
    const fail = (e: Error) => {
      this.failure ??= new ModelError(`ONNX Runtime's thread failed: ${e.message}`, 'worker_failed');
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
    this.worker.on('message', (m: SessionReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if ('error' in m) p.reject(new ModelError(m.error, m.code));
      else p.resolve(m);
      this.keepAlive();
    });
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`it exited with code ${code}`)));
    this.keepAlive();
  }

  /** An idle thread must not keep a CLI process alive; one with work in flight must. */
  private keepAlive(): void {
    if (this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  private request(message: SessionRequest, transfer: ArrayBuffer[] = []): Promise<SessionDone> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject });
      this.keepAlive();
      this.worker.postMessage(message, transfer);
    });
  }

  async run(feeds: Record<string, FloatTensor>, outputs: string[]): Promise<Record<string, FloatTensor>> {
    const copies: Record<string, FloatTensor> = {};
    // A copy of exactly the view: posting a subarray would clone its whole underlying buffer.
    for (const [k, v] of Object.entries(feeds)) copies[k] = { data: v.data.slice(), dims: v.dims };
    const transfer = Object.values(copies).map((t) => t.data.buffer as ArrayBuffer);
    const reply = await this.request({ id: this.next++, feeds: copies, outputs }, transfer);
    return reply.outputs!;
  }

  async close(): Promise<void> {
    if (!this.failure) await this.request({ id: this.next++, close: true }).catch(() => undefined);
    this.failure ??= new ModelError('The model was closed.', 'closed');
    await this.worker.terminate();
  }
}
