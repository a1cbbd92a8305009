/**
 * Unlabelled alignment from the app, end to end through the API on the bundled model: refuse too few stored
 * images (deleted cases do not count), run the job off the request and off the event loop, store the aligned
 * model as a new version that is not active.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobJsonShape } from '../api/models.js';
import { API, startBundledApp, waitForJob, type BundledApp } from '../testing/bundled-app.js';
import { teachingCells, uploadCells, type TeachingCell } from '../testing/reviewed.js';
import type { AlignmentResult } from './models/alignment.js';

type Job = Omit<JobJsonShape, 'result'> & { result: AlignmentResult | null };

describe('alignment to the stored images (bundled model, SQLite)', () => {
  let b: BundledApp;
  // 7 teaching images of each of the 8 classes: 56 distinct stored images.
  const cells = teachingCells(7);

  beforeAll(async () => {
    b = await startBundledApp();
  }, 60_000);
  afterAll(() => b?.close());

  const upload = async (part: TeachingCell[]) => (await uploadCells(b.send, part)).map((c) => c.id);
  const models = async () =>
    (await b.app.inject(`${API}/admin/models`)).json() as {
      active: number;
      versions: {
        version: number;
        sha256: string;
        source: string;
        active: boolean;
        card: { adaptation?: { images: number; parent: { modelSha256: string } } };
      }[];
    };
  const alignments = async () => (await b.app.inject(`${API}/alignments`)).json() as { jobs: Job[] };

  it('refuses with fewer than 50 stored images, counting no deleted case, and starts nothing', async () => {
    expect(cells.length).toBe(56);
    const ids = await upload(cells.slice(0, 51));
    for (const id of ids.slice(0, 2)) {
      const del = await b.app.inject({
        method: 'DELETE',
        url: `${API}/cases/${id}`,
        payload: { reason: 'test' },
      });
      expect(del.statusCode).toBe(204);
    }
    const res = await b.app.inject({ method: 'POST', url: `${API}/alignments`, payload: {} });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: 'too_few_images' });
    expect(res.json().message).toBe('Aligning needs at least 50 stored images of this lab; there are 49.');
    expect((await alignments()).jobs).toEqual([]);
    const bad = await b.app.inject({ method: 'POST', url: `${API}/alignments`, payload: { images: 10 } });
    expect(bad.statusCode).toBe(400);
  }, 60_000);

  it('aligns the active model on the stored images into a new version that is not active', async () => {
    await upload(cells.slice(51));
    const started = await b.app.inject({ method: 'POST', url: `${API}/alignments`, payload: { images: 60 } });
    expect(started.statusCode).toBe(202);
    const job = started.json() as Job;
    expect(job).toMatchObject({ kind: 'alignment', state: 'queued', result: null });

    // The server's event loop stays free while it runs (a worker thread): in this thread it paused up to 2.7 s.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const seen = new Set<string>();
    const done = await waitForJob<Job>(b.send, `${API}/alignments/${job.id}`, {
      timeoutMs: 150_000,
      onPoll: (j) => {
        if (j.stage) seen.add(j.stage);
      },
    });
    loop.disable();
    expect(done.error).toBeNull();
    expect(done.state).toBe('succeeded');
    expect(seen.size).toBeGreaterThan(0);
    expect(loop.max / 1e6).toBeLessThan(1500);
    const result = done.result!;
    expect(result).toMatchObject({
      baseVersion: 1,
      baseSha256: b.vision.card.modelSha256,
      alignedVersion: 2,
    });
    // 54 distinct images not deleted; those where no white cell is found are skipped.
    expect(result.images + result.skipped).toBe(54);
    expect(result.images).toBeGreaterThanOrEqual(50);
    expect(result.flagged.after).not.toBeNull();

    const list = await models();
    expect(list.active).toBe(1);
    expect(list.versions.map((v) => [v.version, v.source, v.active])).toEqual([
      [1, 'bundled', true],
      [2, 'alignment', false],
    ]);
    expect(list.versions[1].sha256).toBe(result.alignedSha256);
    expect(list.versions[1].sha256).not.toBe(b.vision.card.modelSha256);
    expect(list.versions[1].card.adaptation).toMatchObject({
      images: result.images,
      parent: { modelSha256: b.vision.card.modelSha256 },
    });
    expect(b.vision.card.modelSha256).toBe(list.versions[0].sha256); // still serving the bundled model
    expect((await alignments()).jobs.map((j) => j.id)).toEqual([job.id]);
    expect((await b.app.inject(`${API}/alignments/nope`)).statusCode).toBe(404);
    // The job's working folder is gone.
    expect(readdirSync(join(b.dataDir, 'tmp')).filter((f) => f.startsWith('alignment-'))).toEqual([]);
  }, 200_000);
});
