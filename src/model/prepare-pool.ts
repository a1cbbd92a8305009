/**
 * Decoding and cell location off the caller's thread (issue 15: one 7000² BMP decoded in JavaScript stalled
 * every request for 1.8 s). A few worker threads run prepareImage in the order of prepare-queue.ts: fair
 * between groups (one analyzeBatch call each, i.e. one request), interactive groups first. Large images and
 * bulk requests' images run on one restricted thread of their own, at low priority (thread-priority.ts), the
 * others on the ordinary threads: one client's bombs or 50-image uploads neither hold up another's photo nor
 * take a core from it while it is being prepared.
 */
import type { Worker } from 'node:worker_threads';
import { HematoError, InvalidImageError } from '../errors.js';
import { checkInput } from '../imaging/decode.js';
import { startWorker, WorkerCalls } from '../threads.js';
import type { PreparedImage, Preprocessing } from './inputs.js';
import type { BulkHold } from './bulk-hold.js';
import { PrepareQueue, type PrepareGroup, type PrepareLane, type PrepareTaskKind } from './prepare-queue.js';
import type { Priority } from './run-queue.js';

export type { PrepareGroup };

export interface PrepareRequest {
  input: Uint8Array;
  prep: Preprocessing;
  options: { keepImage?: boolean; primaryOnly?: boolean };
}

/** A preparation thread's workerData: the restricted thread lowers its own priority. */
export interface PrepareWorkerData {
  lowPriority: boolean;
}

export type PrepareReply =
  | { ok: true; prepared: PreparedImage }
  | { ok: false; message: string; code: string; status: number; image: boolean };

/** Images above this many pixels take the restricted thread (one at a time). */
export const HEAVY_PIXELS = 8_000_000;

interface Task extends PrepareTaskKind {
  request: PrepareRequest;
  resolve: (p: PreparedImage) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  lane: PrepareLane;
  calls: WorkerCalls<PrepareRequest, PrepareReply>;
  worker: Worker;
  /** The task it runs. */
  running?: PrepareTaskKind;
}

export class PreparePool {
  private readonly slots: Slot[];
  private readonly queue: PrepareQueue<Task>;
  private closed = false;

  /**
   * `threads` ordinary threads, plus the restricted one. `hold`: interactive work in flight elsewhere holds
   * back bulk images' decoding (bulk-hold.ts).
   */
  constructor(
    threads = 2,
    private readonly hold?: BulkHold,
  ) {
    this.queue = new PrepareQueue();
    hold?.onIdle(() => this.pump());
    const lanes: PrepareLane[] = [
      ...Array.from({ length: Math.max(1, threads) }, () => 'ordinary' as const),
      'restricted',
    ];
    this.slots = lanes.map((lane) => {
      const data: PrepareWorkerData = { lowPriority: lane === 'restricted' };
      const worker = startWorker(import.meta.url, 'prepare-worker', data);
      const calls = new WorkerCalls<PrepareRequest, PrepareReply>(worker, {
        failed: (message) => new Error(`Image preparation failed: ${message}`),
        died: (reason) => new Error(`The image preparation thread failed: ${reason}`),
        unrefWhenIdle: true,
      });
      return { lane, calls, worker };
    });
  }

  /** A group: tasks of one group wait their turn behind each other, not behind other groups'. */
  group(priority: Priority = 'interactive'): PrepareGroup {
    return this.queue.group(priority);
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
    return new Promise<PreparedImage>((resolve, reject) => {
      this.queue.add(group, {
        request: { input: head.buffer, prep, options },
        heavy: head.width * head.height > HEAVY_PIXELS,
        bulk: group.priority === 'bulk',
        resolve,
        reject,
      });
      this.pump();
    });
  }

  private pump(): void {
    if (this.closed) return;
    for (const slot of this.slots) {
      if (slot.running) continue;
      const task = this.queue.take(slot.lane, this.hold?.mayStartBulk() ?? true);
      if (!task) continue;
      if (task.bulk) this.hold?.bulkStarted();
      void this.run(slot, task);
    }
    // Bulk images held back: try again when held too long (the hold's end pumps too).
    if (this.hold && !this.wakeTimer && this.queue.bulkWaiting && !this.hold.mayStartBulk()) {
      this.wakeTimer = setTimeout(() => {
        this.wakeTimer = undefined;
        this.pump();
      }, this.hold.waitMs());
    }
  }

  private wakeTimer?: NodeJS.Timeout;

  private async run(slot: Slot, task: Task): Promise<void> {
    slot.running = task;
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
      slot.running = undefined;
      this.pump();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.wakeTimer);
    const closed = new HematoError('The analyser was closed.', 'closed', 503);
    for (const t of this.queue.clear()) t.reject(closed);
    await Promise.all(this.slots.map((s) => s.calls.close(closed, 'drop')));
  }
}
