/**
 * The jobs and model-versions half of the CaseStore contract (contract.ts runs it in every store's suite): a
 * job is held by one runner at a time, a runner that lost it can no longer write to it, a restart fails what
 * ran (export files: contract-exports.ts); model versions are numbered from 1, stored once per
 * sha256, activated through a log.
 */
import { expect, it } from 'vitest';
import type { CaseStore } from './types.js';

export function jobContract(open: () => Promise<CaseStore>): void {
  it('queues, claims, reports progress and finishes a job; only its holder writes to it', async () => {
    const store = await open();
    const job = await store.jobs.create('adaptation', { minCells: 3 });
    expect(job).toMatchObject({ kind: 'adaptation', state: 'queued', progress: 0, attempts: 0, owner: null });
    expect(job.input).toEqual({ minCells: 3 });
    expect(new Date(job.createdAt).toISOString()).toBe(job.createdAt);
    expect(await store.jobs.claimNext(['other'], 'a')).toBeUndefined();
    const held = await store.jobs.claimNext(['other', 'adaptation'], 'a');
    expect(held).toMatchObject({ id: job.id, state: 'running', owner: 'a', attempts: 1 });
    expect(held?.startedAt).toEqual(expect.any(String));
    expect(await store.jobs.claimNext(['adaptation'], 'b')).toBeUndefined(); // nothing else queued
    expect(await store.jobs.progress(job.id, 'a', 0.5, 'half way')).toBe(true);
    expect(await store.jobs.get(job.id)).toMatchObject({ progress: 0.5, stage: 'half way' });

    // Runner b takes it over (a died): a's writes are refused from then on.
    expect(await store.jobs.claim(job.id, 'b')).toMatchObject({ owner: 'b', attempts: 2 });
    expect(await store.jobs.progress(job.id, 'a', 0.9, 'stale')).toBe(false);
    expect(await store.jobs.finish(job.id, 'a', { state: 'failed', error: 'late' })).toBe(false);
    expect(await store.jobs.finish(job.id, 'b', { state: 'succeeded', result: { ok: 1 } })).toBe(true);
    const done = await store.jobs.get(job.id);
    expect(done).toMatchObject({ state: 'succeeded', progress: 1, result: { ok: 1 }, error: null });
    expect(done?.finishedAt).toEqual(expect.any(String));
    // A finished job is never taken again.
    expect(await store.jobs.claim(job.id, 'c')).toBeUndefined();
    expect(await store.jobs.failUnfinished(job.id, 'gone')).toBe(false);
  });

  it('fails the running jobs of a restart, lists newest first, and fails an undelivered job', async () => {
    const store = await open();
    const first = await store.jobs.create('adaptation', null);
    const second = await store.jobs.create('export', null);
    await store.jobs.claim(first.id, 'old-process');
    expect(await store.jobs.failRunning('The server restarted while it ran.', 'someone-else')).toBe(0);
    expect(await store.jobs.failRunning('The server restarted while it ran.')).toBe(1);
    expect(await store.jobs.get(first.id)).toMatchObject({
      state: 'failed',
      error: 'The server restarted while it ran.',
    });
    expect((await store.jobs.list({ limit: 10 })).map((j) => j.id)).toEqual([second.id, first.id]);
    expect((await store.jobs.list({ kind: 'export', limit: 10 })).map((j) => j.id)).toEqual([second.id]);
    expect((await store.jobs.list({ unfinished: true, limit: 10 })).map((j) => j.id)).toEqual([second.id]);
    expect(await store.jobs.failUnfinished(second.id, 'no runner took it')).toBe(true);
    expect(await store.jobs.get(second.id)).toMatchObject({ state: 'failed', error: 'no runner took it' });
    expect(await store.jobs.get('00000000-0000-4000-8000-000000000000')).toBeUndefined();
  });

  it('numbers model versions from 1, stores each model once, and logs activations', async () => {
    const store = await open();
    const card = { name: 'm', classes: ['a', 'b'] };
    const v1 = await store.models.add({
      sha256: 'aa',
      name: 'm',
      card,
      onnx: Buffer.from('first'),
      source: 'bundled',
    });
    const again = await store.models.add({
      sha256: 'aa',
      name: 'm',
      card,
      onnx: Buffer.from('first'),
      source: 'bundled',
    });
    const v2 = await store.models.add({
      sha256: 'bb',
      name: 'm2',
      card: { ...card, name: 'm2' },
      onnx: Buffer.from('second'),
      source: 'adaptation',
      jobId: 'job-1',
    });
    expect([v1.version, again.version, v2.version]).toEqual([1, 1, 2]);
    expect(v2).toMatchObject({ sha256: 'bb', source: 'adaptation', jobId: 'job-1', card: { name: 'm2' } });
    expect((await store.models.list()).map((m) => m.version)).toEqual([1, 2]);
    expect((await store.models.readOnnx(2))?.toString()).toBe('second');
    expect(await store.models.get(3)).toBeUndefined();
    expect(await store.models.activations(5)).toEqual([]);
    await store.models.activate(1);
    await store.models.activate(2);
    expect((await store.models.activations(5)).map((a) => a.version)).toEqual([2, 1]);
  });
}
