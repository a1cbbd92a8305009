import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type MessagePort } from 'node:worker_threads';
import { HematoError } from './errors.js';

/**
 * Starts a worker on the module `name` beside `from` (pass `import.meta.url`), with the same extension as
 * `from`. Run from TypeScript sources (tsx, vitest), the worker has no TypeScript loader of its own, so a
 * one-line bootstrap registers tsx's before importing the module.
 */
export function startWorker(from: string, name: string, workerData: unknown): Worker {
  const entry = new URL(`./${name}${extname(fileURLToPath(from))}`, from);
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData });
}

/**
 * Runs a one-shot job in its own worker thread (the module `name` beside `from`, given `workerData`): messages
 * other than `{ result }` and `{ error, code? }` are progress, passed to `onProgress`; the first result or error
 * settles it, as do stopping through `signal` and the thread's death. The thread is terminated however it ends,
 * with whatever it was computing.
 */
export function runJobThread<Progress extends object, Result>(
  from: string,
  name: string,
  workerData: unknown,
  o: {
    onProgress: (m: Progress) => void;
    signal?: AbortSignal;
    /** The error code of a job the worker reports as failed without one of its own. */
    failCode: string;
    /** The job, in the message of a thread that died ("the alignment's thread stopped"). */
    what: string;
  },
): Promise<Result> {
  const { signal } = o;
  const worker = startWorker(from, name, workerData);
  return new Promise<Result>((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', stop);
      void worker.terminate();
      f();
    };
    const stop = () => settle(() => reject(signal?.reason ?? new Error('Stopped.')));
    if (signal?.aborted) return stop();
    signal?.addEventListener('abort', stop, { once: true });
    worker.on('message', (m: Progress | { result: Result } | { error: string; code?: string }) => {
      if ('result' in m) settle(() => resolve(m.result));
      else if ('error' in m) settle(() => reject(new HematoError(m.error, m.code ?? o.failCode)));
      else o.onProgress(m);
    });
    worker.on('error', (e) => settle(() => reject(e)));
    worker.on('exit', (code) =>
      settle(() =>
        reject(new HematoError(`The ${o.what}'s thread stopped (exit code ${code}).`, 'worker_failed', 500)),
      ),
    );
  });
}

/**
 * The worker's side of runJobThread: posts the job's outcome to `port` once `job` settles, `{ result }` or
 * `{ error, code }` (code: a HematoError's, else none and the parent uses its failCode).
 */
export function postJobOutcome<Result>(port: MessagePort, job: Promise<Result>): void {
  job.then(
    (result) => port.postMessage({ result }),
    (err: unknown) =>
      port.postMessage({
        error: err instanceof Error ? err.message : String(err),
        code: err instanceof HematoError ? err.code : undefined,
      }),
  );
}

/** A worker's answer to one call: its result, or why it failed (`code` for the error to rethrow). */
export type WorkerReply<T> = { id: number; result: T } | { id: number; error: string; code?: string };

/**
 * Request/reply calls to a worker: each request gets an id, the worker answers it with a WorkerReply of the
 * same id. A worker that dies rejects every call in flight and every later one with `died(reason)`.
 */
export class WorkerCalls<Request, Result> {
  private readonly pending = new Map<number, { resolve: (r: Result) => void; reject: (e: Error) => void }>();
  private next = 1;
  private failure: Error | null = null;
  private readonly unrefWhenIdle: boolean;

  constructor(
    private readonly worker: Worker,
    o: {
      /** The error for a call the worker answered with an error. */
      failed: (message: string, code?: string) => Error;
      /** The error once the worker itself has died. */
      died: (reason: string) => Error;
      /** Let the process exit while no call is in flight (a CLI must not hang on an idle thread). */
      unrefWhenIdle?: boolean;
    },
  ) {
    const die = (reason: string) => {
      this.failure ??= o.died(reason);
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
    worker.on('message', (m: WorkerReply<Result>) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if ('error' in m) p.reject(o.failed(m.error, m.code));
      else p.resolve(m.result);
      if (o.unrefWhenIdle && this.pending.size === 0) worker.unref();
    });
    worker.on('error', (e) => die(e.message));
    worker.on('exit', (code) => die(`it exited with code ${code}`));
    this.unrefWhenIdle = o.unrefWhenIdle === true;
    if (this.unrefWhenIdle) worker.unref();
  }

  call(request: Request, transfer: ArrayBuffer[] = []): Promise<Result> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.unrefWhenIdle) this.worker.ref();
      this.worker.postMessage({ id, request }, transfer);
    });
  }

  /**
   * Stops the worker; later calls reject with `closed`. Calls still in flight are rejected with it too, or
   * dropped when nobody awaits them any more (`drop`: rejecting those would be unhandled rejections).
   */
  async close(closed: Error, inFlight: 'reject' | 'drop' = 'reject'): Promise<void> {
    this.failure ??= closed;
    if (inFlight === 'reject') for (const p of this.pending.values()) p.reject(closed);
    this.pending.clear();
    await this.worker.terminate();
  }
}

/**
 * One worker thread for a service that may never be used: started by the first call (a process that never
 * calls pays nothing), shared by all calls (they interleave on its loop), replaced by the next call after it
 * died (the calls in flight fail, WorkerCalls), and idle it does not keep a CLI or a test process alive.
 */
export class LazyWorker<Request, Result> {
  private calls: WorkerCalls<Request, Result> | undefined;
  private closed = false;

  constructor(
    private readonly start: () => Worker,
    private readonly o: {
      failed: (message: string, code?: string) => Error;
      died: (reason: string) => Error;
      /** The error for every call after close(). */
      closed: () => Error;
    },
  ) {}

  async call(request: Request): Promise<Result> {
    if (this.closed) throw this.o.closed();
    return this.thread().call(request);
  }

  private thread(): WorkerCalls<Request, Result> {
    if (this.calls) return this.calls;
    const worker = this.start();
    const calls = new WorkerCalls<Request, Result>(worker, {
      failed: this.o.failed,
      died: this.o.died,
      unrefWhenIdle: true,
    });
    worker.on('exit', () => {
      if (this.calls === calls) this.calls = undefined;
    });
    this.calls = calls;
    return calls;
  }

  async close(): Promise<void> {
    this.closed = true;
    const calls = this.calls;
    this.calls = undefined;
    await calls?.close(this.o.closed());
  }
}

/** The worker's side: answers each call with `handle`'s result (transferring `transfer(result)`) or its error. */
export function answerCalls<Request, Result>(
  port: MessagePort,
  handle: (request: Request) => Result | Promise<Result>,
  transfer: (result: Result) => ArrayBuffer[] = () => [],
): void {
  port.on('message', (m: { id: number; request: Request }) => {
    void (async () => {
      let reply: WorkerReply<Result>;
      let list: ArrayBuffer[] = [];
      try {
        const result = await handle(m.request);
        reply = { id: m.id, result };
        list = transfer(result);
      } catch (e) {
        reply = {
          id: m.id,
          error: e instanceof Error ? e.message : String(e),
          code: e instanceof HematoError ? e.code : undefined,
        };
      }
      port.postMessage(reply, list);
    })();
  });
}
