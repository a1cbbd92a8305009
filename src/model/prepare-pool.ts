/**
 * Decoding and cell location off the caller's thread (issue 15: one 7000² BMP decoded in JavaScript stalled
 * every request for 1.8 s). A few worker threads run prepareImage; the queue is fair between groups (one
 * analyzeBatch call each, i.e. one request) and a large image waits for the one heavy slot, so the other
 * thread always stays free for ordinary images: one client's bombs cannot hold up another's photo.
 */
import type { Worker } from 'node:worker_threads';
import { HematoError, InvalidImageError } from '../errors.js';
import { checkInput } from '../imaging/decode.js';
import { startWorker, WorkerCalls } from '../threads.js';
import type { PreparedImage, Preprocessing } from './inputs.js';

export interface PrepareRequest {
  input: Uint8Array;
  prep: Preprocessing;
  options: { keepImage?: boolean; primaryOnly?: boolean };
}

export type PrepareReply =
  | { ok: true; prepared: PreparedImage }
  | { ok: false; message: string; code: string; status: number; image: boolean };

/** Images above this many pixels take the heavy slot (one at a time). */
export const HEAVY_PIXELS = 8_000_000;

interface Task {
  request: PrepareRequest;
  heavy: boolean;
  resolve: (p: PreparedImage) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  calls: WorkerCalls<PrepareRequest, PrepareReply>;
  worker: Worker;
  busy: boolean;
  heavy: boolean;
}

export class PreparePool {
  private readonly slots: Slot[];
  /** Per group, its waiting tasks; groups take turns in insertion order. */
  private readonly groups = new Map<number, Task[]>();
  private nextGroup = 1;
  private closed = false;

  constructor(threads = 2) {
    this.slots = Array.from({ length: Math.max(1, threads) }, () => {
      const worker = startWorker(import.meta.url, 'prepare-worker', null);
      const calls = new WorkerCalls<PrepareRequest, PrepareReply>(worker, {
        failed: (message) => new Error(`Image preparation failed: ${message}`),
        died: (reason) => new Error(`The image preparation thread failed: ${reason}`),
        unrefWhenIdle: true,
      });
      return { calls, worker, busy: false, heavy: false };
    });
  }

  /** A group id: tasks of one group wait their turn behind each other, not behind other groups'. */
  group(): number {
    return this.nextGroup++;
  }

  /** prepareImage in a worker thread; the same result and the same errors. */
  async prepare(
    input: Buffer | string,
    prep: Preprocessing,
    options: PrepareRequest['options'] = {},
    group = this.group(),
  ): Promise<PreparedImage> {
    if (this.closed) throw new HematoError('The analyser was closed.', 'closed', 503);
    // The header alone says how large the decoded image will be (and refuses what is not an image at all).
    const head = await checkInput(input);
    const task = await new Promise<PreparedImage>((resolve, reject) => {
      const list = this.groups.get(group) ?? [];
      list.push({
        request: { input: head.buffer, prep, options },
        heavy: head.width * head.height > HEAVY_PIXELS,
        resolve,
        reject,
      });
      this.groups.set(group, list);
      this.pump();
    });
    return task;
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const task = this.take(this.slots.some((s) => s.busy && s.heavy));
      if (!task) return;
      void this.run(slot, task);
    }
  }

  /** The first task in turn order that may start now (a heavy one only while no heavy one runs). */
  private take(heavyRunning: boolean): Task | undefined {
    for (const [id, list] of this.groups) {
      const i = list.findIndex((t) => !(t.heavy && heavyRunning));
      if (i < 0) continue;
      const [task] = list.splice(i, 1);
      // This group's next task goes behind every other group's.
      this.groups.delete(id);
      if (list.length > 0) this.groups.set(id, list);
      return task;
    }
    return undefined;
  }

  private async run(slot: Slot, task: Task): Promise<void> {
    slot.busy = true;
    slot.heavy = task.heavy;
    try {
      const reply = await slot.calls.call(task.request);
      if (reply.ok) task.resolve(reply.prepared);
      else {
        const Err = reply.image ? InvalidImageError : HematoError;
        task.reject(new Err(reply.message, reply.code, reply.status));
      }
    } catch (err) {
      task.reject(err);
    } finally {
      slot.busy = false;
      slot.heavy = false;
      this.pump();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const closed = new HematoError('The analyser was closed.', 'closed', 503);
    for (const list of this.groups.values()) for (const t of list) t.reject(closed);
    this.groups.clear();
    await Promise.all(this.slots.map((s) => s.calls.close(closed, 'drop')));
  }
}
