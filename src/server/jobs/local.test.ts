import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteCaseStore } from '../store/index.js';
import { LocalJobQueue, RESTARTED } from './local.js';

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(dir?: string) {
  const d = dir ?? mkdtempSync(join(tmpdir(), 'hv-jobs-'));
  if (!dir) dirs.push(d);
  const store = SqliteCaseStore.open(d);
  const queue = new LocalJobQueue(store, 50);
  closers.push(async () => {
    await queue.close();
    await store.close();
  });
  return { dir: d, store, queue };
}

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LocalJobQueue (SQLite, one process)', () => {
  it('runs a job off the request, with progress, its result, and a failure as a message', async () => {
    const { store, queue } = open();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    queue.register('sum', {
      expireSeconds: 60,
      handler: async (input, ctx) => {
        const { a, b } = input as { a: number; b: number };
        await ctx.progress(0.5, 'adding');
        await gate;
        if (a < 0) throw new Error('Negative numbers are not allowed.');
        return { sum: a + b };
      },
    });
    await queue.start();
    const job = await queue.submit('sum', { a: 2, b: 3 });
    expect(job.state).toBe('queued'); // answered at once, the work comes later
    const mid = await until(
      () => store.jobs.get(job.id),
      (j) => j?.stage === 'adding',
    );
    expect(mid).toMatchObject({ state: 'running', progress: 0.5, owner: queue.owner, attempts: 1 });
    release();
    expect(
      await until(
        () => store.jobs.get(job.id),
        (j) => j?.state === 'succeeded',
      ),
    ).toMatchObject({
      result: { sum: 5 },
      progress: 1,
    });
    const bad = await queue.submit('sum', { a: -1, b: 0 });
    expect(
      await until(
        () => store.jobs.get(bad.id),
        (j) => j?.state === 'failed',
      ),
    ).toMatchObject({
      error: 'Negative numbers are not allowed.',
    });
    await expect(queue.submit('nope', {})).rejects.toThrow(/No job of kind "nope"/);
  });

  it('runs one job of each kind at a time: a short kind is not held up behind a long one', async () => {
    const { store, queue } = open();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    queue.register('long', { expireSeconds: 60, handler: () => gate.then(() => 'long done') });
    queue.register('short', { expireSeconds: 60, handler: async (input) => input });
    await queue.start();
    const long = await queue.submit('long', null);
    const secondLong = await queue.submit('long', null);
    const short = await queue.submit('short', 7);
    expect(
      await until(
        () => store.jobs.get(short.id),
        (j) => j?.state === 'succeeded',
      ),
    ).toMatchObject({ result: 7 });
    expect(await store.jobs.get(long.id)).toMatchObject({ state: 'running' });
    expect(await store.jobs.get(secondLong.id)).toMatchObject({ state: 'queued' }); // its kind's turn waits
    release();
    expect(
      await until(
        () => store.jobs.get(secondLong.id),
        (j) => j?.state === 'succeeded',
      ),
    ).toMatchObject({ result: 'long done' });
  });

  it('fails a job that was running when the server stopped, on the next start, and runs the next one', async () => {
    const first = open();
    first.queue.register('slow', { expireSeconds: 60, handler: () => new Promise(() => undefined) });
    await first.queue.start();
    const job = await first.queue.submit('slow', null);
    await until(
      () => first.store.jobs.get(job.id),
      (j) => j?.state === 'running',
    );
    // A crash: the row still says running, nobody closed the queue.
    await first.store.close();
    closers.splice(0);
    const again = open(first.dir);
    again.queue.register('slow', { expireSeconds: 60, handler: async () => 'done' });
    const queued = await again.store.jobs.create('slow', null);
    await again.queue.start();
    expect(await again.store.jobs.get(job.id)).toMatchObject({ state: 'failed', error: RESTARTED });
    expect(
      await until(
        () => again.store.jobs.get(queued.id),
        (j) => j?.state === 'succeeded',
      ),
    ).toMatchObject({ result: 'done' });
  });

  it('stops a job past its time limit as a failure, and a stopping server fails what it ran', async () => {
    const { store, queue } = open();
    queue.register('forever', { expireSeconds: 1.2, handler: () => new Promise(() => undefined) });
    await queue.start();
    const job = await queue.submit('forever', null);
    expect(
      await until(
        () => store.jobs.get(job.id),
        (j) => j?.state === 'failed',
      ),
    ).toMatchObject({
      error: 'The job took longer than its limit of 1 s and was stopped.',
    });
    queue.register('forever', { expireSeconds: 60, handler: () => new Promise(() => undefined) });
    const second = await queue.submit('forever', null);
    await until(
      () => store.jobs.get(second.id),
      (j) => j?.state === 'running',
    );
    await queue.close(); // does not wait for a handler that ignores the signal
    expect(await store.jobs.get(second.id)).toMatchObject({ state: 'failed', error: RESTARTED });
  });
});
