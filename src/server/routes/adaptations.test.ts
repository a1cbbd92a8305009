/**
 * An adaptation's reply carries the result its job stored, whole and as stored: the route's schema (api/models.ts
 * AdaptationJob) is the one shape of it, so a field it left out would be dropped from every reply, silently.
 * Jobs are written to the store directly (no model is trained) and the runner never looks for them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdaptationResultJson, HeldOutScore } from '../../api/models.js';
import { fakeModel, loadFake } from '../../testing/model-versions.js';
import { buildApp } from '../app.js';

const API = '/api/v1';

const score = (accuracy: number): HeldOutScore => ({
  accuracy,
  macroF1: accuracy - 0.05,
  reviewRate: 0.125,
  silentErrors: 3,
  silentErrorRate: 0.0375,
  perClass: {
    lymphocyte: { precision: 0.9, recall: 0.8, f1: 0.8470588235294118, support: 40 },
    neutrophil: { precision: 0.75, recall: 0.85, f1: 0.7968749999999999, support: 40 },
  },
});

const result: AdaptationResultJson = {
  baseVersion: 1,
  baseSha256: 'a'.repeat(64),
  candidateVersion: 2,
  candidateSha256: 'b'.repeat(64),
  counts: {
    trained: { lymphocyte: 120, neutrophil: 110 },
    heldOut: { lymphocyte: 40, neutrophil: 40 },
    final: { lymphocyte: 160, neutrophil: 150 },
    ignored: { basophil: 2 },
  },
  comparison: { heldOut: 80, active: score(0.81), candidate: score(0.86) },
  recipe: { l2: 0.01, l2Cv: [{ l2: 0.01, nll: 0.41, accuracy: 0.86 }], folds: 3, views: 3 },
};

describe('an adaptation job through the API', () => {
  const root = mkdtempSync(join(tmpdir(), 'hv-adaptation-route-'));
  let app: FastifyInstance;

  beforeAll(async () => {
    const model = fakeModel(join(root, 'model'), 'model bytes');
    app = await buildApp({
      auth: 'off',
      vision: await loadFake(model.path),
      dataDir: join(root, 'data'),
      webDir: join(root, 'no-web'),
      models: { path: model.path, load: loadFake },
      jobs: { pollSeconds: 3600 },
    });
  });
  afterAll(async () => {
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function finished(stored: unknown): Promise<string> {
    const jobs = app.caseStore.jobs;
    const job = await jobs.create('adaptation', { baseVersion: 1 });
    expect(await jobs.claim(job.id, 'test')).toBeDefined();
    expect(await jobs.finish(job.id, 'test', { state: 'succeeded', result: stored })).toBe(true);
    return job.id;
  }

  it('serves the stored result whole, alone and in the list', async () => {
    const id = await finished(result);
    const one = await app.inject(`${API}/adaptations/${id}`);
    expect(one.statusCode).toBe(200);
    const body = one.json() as { id: string; state: string; result: unknown };
    expect(body).toMatchObject({ id, state: 'succeeded' });
    // Equal, not merely matching: a field the schema lacked would be missing here.
    expect(body.result).toEqual(result);
    const list = (await app.inject(`${API}/adaptations`)).json() as {
      jobs: { id: string; result: unknown }[];
    };
    expect(list.jobs.find((j) => j.id === id)?.result).toEqual(result);
  });

  it('serves an older job stored before the final counts and the recipe were written', async () => {
    const { recipe: _recipe, ...older } = result;
    const { final: _final, ...counts } = result.counts;
    void _recipe;
    void _final;
    const id = await finished({ ...older, counts });
    const body = (await app.inject(`${API}/adaptations/${id}`)).json() as { result: unknown };
    expect(body.result).toEqual({ ...older, counts });
  });

  it('serves a job not finished yet with no result', async () => {
    const job = await app.caseStore.jobs.create('adaptation', { baseVersion: 1 });
    expect((await app.inject(`${API}/adaptations/${job.id}`)).json()).toMatchObject({
      state: 'queued',
      result: null,
    });
  });

  it('describes the result in the OpenAPI document from the one schema of a held-out score', async () => {
    const doc = (await app.inject(`${API}/openapi.json`)).json() as {
      paths: Record<
        string,
        { get: { responses: Record<string, { content: Record<string, { schema: unknown }> }> } }
      >;
    };
    const schema = JSON.stringify(doc.paths['/api/v1/adaptations/{id}'].get.responses['200'].content);
    for (const field of ['silentErrorRate', 'macroF1', 'reviewRate', 'perClass', 'candidateSha256', 'l2Cv'])
      expect(schema).toContain(`"${field}"`);
  });
});
