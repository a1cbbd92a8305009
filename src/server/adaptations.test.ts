/**
 * Learning from reviewed cells and model versions, end to end through the API on the bundled model: refuse
 * too few reviews, run the job off the request, compare, activate (new cases carry the new sha256), roll back.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobJsonShape } from '../api/models.js';
import { API, newCaseSha, startBundledApp, waitForJob, type BundledApp } from '../testing/bundled-app.js';
import { seedReviewedCells, teachingCells } from '../testing/reviewed.js';
import { hasShared, skipNote, TFLITE } from '../testing/shared.js';
import type { AdaptationResult } from './models/adaptation.js';

/** A job as the API returns it, with an adaptation's result (the server's own types). */
type Job = Omit<JobJsonShape, 'result'> & { result: AdaptationResult | null };

describe('adaptations and model versions (bundled model, SQLite)', () => {
  let b: BundledApp;

  beforeAll(async () => {
    b = await startBundledApp();
  }, 60_000);
  afterAll(() => b?.close());

  const models = async () =>
    (await b.app.inject(`${API}/admin/models`)).json() as {
      active: number;
      versions: { version: number; sha256: string; source: string; active: boolean }[];
      activations: { version: number }[];
    };
  const predictOne = () => newCaseSha(b.send);

  it('starts with the bundled model as version 1, active, and refuses to adapt without reviews', async () => {
    const list = await models();
    expect(list.active).toBe(1);
    expect(list.versions).toEqual([expect.objectContaining({ version: 1, source: 'bundled', active: true })]);
    expect(list.versions[0].sha256).toBe(b.vision.card.modelSha256);
    expect(existsSync(join(b.dataDir, 'models'))).toBe(false); // written out only when loaded from the store
    const res = await b.app.inject({ method: 'POST', url: `${API}/adaptations`, payload: {} });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'too_few_reviewed_cells' });
    expect(res.json().message).toMatch(/each class needs at least 10; eosinophil has 0/);
    // Every new case records the model file that made it.
    expect(await predictOne()).toBe(b.vision.card.modelSha256);
  });

  it('trains a candidate on reviewed cells, shows it beside the active model, activates it, rolls back', async () => {
    // 10 teaching images of each class, each with its one cell reviewed: twice the fewest the job is given.
    const seeded = await seedReviewedCells(b.send, teachingCells(10));
    expect(seeded.reviewed).toBeGreaterThan(60);
    const started = await b.app.inject({
      method: 'POST',
      url: `${API}/adaptations`,
      payload: { minCellsPerClass: 5, holdOutFraction: 0.3 },
    });
    expect(started.statusCode).toBe(202);
    const job = started.json() as Job;
    expect(job.state).toBe('queued');

    // Predictions go on while it runs (the heavy part is in a worker thread): a few are enough to show it,
    // and each one takes CPU from the job.
    const seen = new Set<string>();
    let predictedWhileRunning = 0;
    const done = await waitForJob<Job>(b.send, `${API}/adaptations/${job.id}`, {
      timeoutMs: 180_000,
      onPoll: async (j) => {
        seen.add(j.state);
        if (j.state !== 'running' || predictedWhileRunning >= 3) return;
        expect(await predictOne()).toBe(b.vision.card.modelSha256);
        predictedWhileRunning++;
      },
    });
    expect(done.error).toBeNull();
    expect(done.state).toBe('succeeded');
    expect(seen.has('running')).toBe(true);
    expect(predictedWhileRunning).toBeGreaterThan(0);
    const result = done.result as NonNullable<Job['result']>;
    expect(result).toMatchObject({ baseVersion: 1, candidateVersion: 2 });
    expect(result.comparison.heldOut).toBe(Object.values(result.counts.heldOut).reduce((a, b) => a + b, 0));
    for (const side of [result.comparison.active, result.comparison.candidate])
      expect(Object.keys(side).sort()).toEqual(
        ['accuracy', 'ece', 'macroF1', 'perClass', 'reviewRate', 'silentErrorRate', 'silentErrors'].sort(),
      );
    expect(result.comparison.candidate.accuracy).toBeGreaterThan(0.5);
    // Fewer than 200 reviewed cells a class (and no TFLite weights configured here): a new head.
    expect(result.recipe).toMatchObject({
      kind: 'head',
      reason: expect.stringMatching(
        /^A new head on the frozen backbone: \w+ has \d+ reviewed cells, fewer than the 200/,
      ),
    });

    // Stored, not active: the server still serves version 1.
    let list = await models();
    expect(list.active).toBe(1);
    expect(list.versions.map((v) => [v.version, v.source])).toEqual([
      [1, 'bundled'],
      [2, 'adaptation'],
    ]);
    expect(await predictOne()).toBe(result.baseSha256);

    const activated = await b.app.inject({ method: 'POST', url: `${API}/admin/models/2/activate` });
    expect(activated.statusCode).toBe(200);
    expect(await predictOne()).toBe(result.candidateSha256); // swapped without a restart
    list = await models();
    expect(list.active).toBe(2);
    expect(readdirSync(join(b.dataDir, 'models'))).toContain(result.candidateSha256);
    if (process.env.HV_PRINT_ADAPTATION) console.log(JSON.stringify(result, null, 1));

    const back = await b.app.inject({ method: 'POST', url: `${API}/admin/models/rollback` });
    expect(back.statusCode).toBe(200);
    expect(await predictOne()).toBe(result.baseSha256);
    expect((await models()).activations.map((a) => a.version)).toEqual([1, 2, 1]);
    expect((await b.app.inject({ method: 'POST', url: `${API}/admin/models/9/activate` })).statusCode).toBe(
      404,
    );
  }, 300_000);
});

if (!hasShared) skipNote('adaptation by fine-tuning', TFLITE);

describe.skipIf(!hasShared)('an adaptation that fine-tunes (every class has enough reviewed cells)', () => {
  let b: BundledApp;

  beforeAll(async () => {
    b = await startBundledApp({
      // The threshold lowered to the cells reviewed here, and a short run (one epoch of the top blocks).
      fineTune: {
        tflite: TFLITE,
        minCellsPerClass: 5,
        overrides: { epochs: 1, trainFromBlock: 16, batchSize: 8, lr: 1e-4, headLr: 1e-3 },
      },
    });
  }, 60_000);
  afterAll(() => b?.close());

  it('fine-tunes a candidate from the active model, says so, and leaves the active model serving', async () => {
    await seedReviewedCells(b.send, teachingCells(5));
    const started = await b.app.inject({
      method: 'POST',
      url: `${API}/adaptations`,
      payload: { minCellsPerClass: 5, holdOutFraction: 0.3 },
    });
    expect(started.statusCode).toBe(202);
    const id = (started.json() as Job).id;
    const done = await waitForJob<Job>(b.send, `${API}/adaptations/${id}`, { timeoutMs: 120_000 });
    expect(done.error).toBeNull();
    expect(done.state).toBe('succeeded');
    const result = done.result!;
    expect(result.recipe).toMatchObject({
      kind: 'fine-tune',
      reason: expect.stringContaining('Fine-tuned from the active model: every class has at least 5'),
      epochs: 1,
      trainFromBlock: 16,
    });
    expect(result.comparison.heldOut).toBe(Object.values(result.counts.heldOut).reduce((a, b) => a + b, 0));
    expect(Object.values(result.counts.calibration!).every((n) => n >= 1)).toBe(true);
    const list = (await b.app.inject(`${API}/admin/models`)).json() as {
      active: number;
      versions: {
        version: number;
        sha256: string;
        card: { reviewedCells: { recipe: string; note: string }; familiarity?: unknown };
      }[];
    };
    expect(list.active).toBe(1);
    expect(list.versions[1]).toMatchObject({ version: 2, sha256: result.candidateSha256 });
    expect(list.versions[1].card.reviewedCells.recipe).toBe('fine-tune');
    // 8 calibration cells are too few to fit familiarity checks of its own (20): it says so, and has none.
    expect(list.versions[1].card.familiarity).toBeUndefined();
    expect(list.versions[1].card.reviewedCells.note).toContain(
      'it has no familiarity checks (fitting them needs at least 20 calibration cells, it had 8)',
    );
    expect(result.baseSha256).toBe(b.vision.card.modelSha256);
    // The job's working folder is gone.
    expect(readdirSync(join(b.dataDir, 'tmp')).filter((f) => f.startsWith('adaptation-'))).toEqual([]);
  }, 180_000);
});
