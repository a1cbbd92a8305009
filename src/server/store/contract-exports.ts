/**
 * The export-files part of the CaseStore contract (contract.ts runs it in every store's suite): a file is
 * stored once by its content and named by the job that made it; a sweep removes old finished export jobs and
 * then each of their files no remaining job names, also keeping one that a job still running has just stored
 * (identical bytes: the same signed revision exported twice).
 */
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import type { CaseStore } from './types.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const KINDS = ['export-cases', 'export-report'];
const later = () => new Date(Date.now() + 60_000);
const earlier = () => new Date(Date.now() - 60_000);

/** A job of `kind` claimed by runner r (running), with its file stored when `bytes` are given. */
async function running(store: CaseStore, kind: string, bytes?: Buffer) {
  const job = await store.jobs.create(kind, { kind });
  await store.jobs.claim(job.id, 'r');
  const sha = bytes ? await store.putExportFile(job.id, 'r', bytes) : undefined;
  return { id: job.id, sha };
}

async function finished(store: CaseStore, kind: string, bytes?: Buffer) {
  const job = await running(store, kind, bytes);
  await store.jobs.finish(job.id, 'r', { state: 'succeeded', result: { sha256: job.sha } });
  return job;
}

const gone = (store: CaseStore, sha: string) =>
  expect(store.readExportFile(sha)).rejects.toMatchObject({ code: 'file_missing' });

export function exportFileContract(open: () => Promise<CaseStore>): void {
  it('stores an export job’s file once by its content, for any runner to read; a missing one is file_missing', async () => {
    const store = await open();
    const csv = Buffer.from('id,label\r\na,neutrophil\r\n');
    const { id, sha } = await running(store, 'export-cases', csv);
    expect(sha).toMatch(/^[0-9a-f]{64}$/);
    const other = await store.jobs.create('export-cases', null);
    await store.jobs.claim(other.id, 'r');
    expect(await store.putExportFile(other.id, 'r', Buffer.from(csv))).toBe(sha); // the same bytes: the same file
    expect((await store.readExportFile(sha!)).equals(csv)).toBe(true);
    await expect(store.readExportFile('0'.repeat(64))).rejects.toMatchObject({ code: 'file_missing' });
    // No job, nothing stored (no file that no job names and no sweep would ever remove).
    const stray = Buffer.from('for nobody');
    await expect(
      store.putExportFile('00000000-0000-4000-8000-000000000000', 'r', stray),
    ).rejects.toMatchObject({ code: 'job_not_held' });
    await expect(store.readExportFile(sha256(stray))).rejects.toMatchObject({ code: 'file_missing' });
    expect(await store.jobs.get(id)).toMatchObject({ state: 'running' });
  });

  it('sweeps finished export jobs older than the cut-off, then each file no remaining job names', async () => {
    const store = await open();
    const shared = Buffer.from('%PDF signed revision 1');
    const a = await finished(store, 'export-report', shared);
    const b = await finished(store, 'export-report', shared); // exported twice: one file
    const csv = await finished(store, 'export-cases', Buffer.from('id\r\n'));
    const failed = await running(store, 'export-cases');
    await store.jobs.finish(failed.id, 'r', { state: 'failed', error: 'no' });
    const queued = await store.jobs.create('export-cases', null);
    const adaptation = await store.jobs.create('adaptation', null);
    await store.jobs.claim(adaptation.id, 'r');
    await store.jobs.finish(adaptation.id, 'r', { state: 'failed', error: 'not an export' });

    // Nothing finished before the cut-off: nothing goes.
    expect(await store.sweepExports(KINDS, earlier())).toEqual({ jobs: 0, files: 0 });
    expect((await store.readExportFile(a.sha!)).equals(shared)).toBe(true);

    // Only one kind: the other's jobs and files stay.
    expect(await store.sweepExports(['export-cases'], later())).toEqual({ jobs: 2, files: 1 });
    await gone(store, csv.sha!);
    expect(await store.jobs.get(csv.id)).toBeUndefined();
    expect(await store.jobs.get(failed.id)).toBeUndefined();
    expect(await store.jobs.get(queued.id)).toMatchObject({ state: 'queued' }); // unfinished: never swept
    expect(await store.jobs.get(adaptation.id)).toMatchObject({ state: 'failed' }); // not an export kind

    expect(await store.sweepExports(KINDS, later())).toEqual({ jobs: 2, files: 1 });
    expect(await store.jobs.get(a.id)).toBeUndefined();
    expect(await store.jobs.get(b.id)).toBeUndefined();
    await gone(store, a.sha!);
    expect(await store.sweepExports(KINDS, later())).toEqual({ jobs: 0, files: 0 });
  });

  it('keeps a file that a running job stored (the same bytes as a swept one) and has not recorded as its result yet', async () => {
    const store = await open();
    const pdf = Buffer.from('%PDF the same signed revision');
    const old = await finished(store, 'export-report', pdf);
    // Exported again: the running job has stored identical bytes, its result is not written yet.
    const again = await running(store, 'export-report', pdf);
    expect(again.sha).toBe(old.sha);
    expect(await store.sweepExports(KINDS, later())).toEqual({ jobs: 1, files: 0 });
    expect(await store.jobs.get(old.id)).toBeUndefined();
    expect((await store.readExportFile(again.sha!)).equals(pdf)).toBe(true);
    // Once it finished and is old enough, it goes with its file.
    await store.jobs.finish(again.id, 'r', { state: 'succeeded', result: { sha256: again.sha } });
    expect(await store.sweepExports(KINDS, later())).toEqual({ jobs: 1, files: 1 });
    await gone(store, again.sha!);
  });

  it('refuses the file of a runner that lost its job (taken over, or finished): the holder’s file stays', async () => {
    const store = await open();
    const job = await store.jobs.create('export-cases', null);
    await store.jobs.claim(job.id, 'a');
    await store.jobs.claim(job.id, 'b'); // a's replica was taken for dead
    const mine = await store.putExportFile(job.id, 'b', Buffer.from('id\r\nb made this\r\n'));
    const late = Buffer.from('id\r\na made this, later\r\n');
    await expect(store.putExportFile(job.id, 'a', late)).rejects.toMatchObject({ code: 'job_not_held' });
    await expect(store.readExportFile(sha256(late))).rejects.toMatchObject({ code: 'file_missing' });
    expect((await store.readExportFile(mine)).toString()).toBe('id\r\nb made this\r\n');
    await store.jobs.finish(job.id, 'b', { state: 'succeeded', result: { sha256: mine } });
    await expect(store.putExportFile(job.id, 'b', late)).rejects.toMatchObject({ code: 'job_not_held' });
    // The file is still the job's: swept with it.
    expect(await store.sweepExports(KINDS, later())).toEqual({ jobs: 1, files: 1 });
  });

  it('removes the earlier file of a job that stored other bytes on a retry, unless another job names it', async () => {
    const store = await open();
    const job = await running(store, 'export-cases', Buffer.from('id\r\nfirst attempt\r\n'));
    const retried = await store.putExportFile(job.id, 'r', Buffer.from('id\r\nsecond attempt\r\n'));
    await gone(store, job.sha!);
    expect((await store.readExportFile(retried)).toString()).toBe('id\r\nsecond attempt\r\n');
    const keeper = await running(store, 'export-cases', Buffer.from('id\r\nsecond attempt\r\n'));
    await store.putExportFile(job.id, 'r', Buffer.from('id\r\nthird attempt\r\n'));
    expect((await store.readExportFile(keeper.sha!)).toString()).toBe('id\r\nsecond attempt\r\n');
  });
}
