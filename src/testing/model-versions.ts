/**
 * Model versions without a network: fake model files (bytes whose sha256 their card states) loaded as fake
 * analysers, and the roll back sequence every store must give through the API (SQLite and PostgreSQL tests).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { ModelCard } from '../model/types.js';
import { FAKE_CARD, fakeVision } from './server.js';

const API = '/api/v1';

/** A folder with model.onnx (some bytes) and its card. */
export function fakeModel(dir: string, bytes: string): { path: string; card: ModelCard } {
  mkdirSync(dir, { recursive: true });
  const onnx = Buffer.from(bytes);
  const card = { ...FAKE_CARD, modelSha256: createHash('sha256').update(onnx).digest('hex') };
  writeFileSync(join(dir, 'model.onnx'), onnx);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(card));
  return { path: join(dir, 'model.onnx'), card };
}

/** Loads a fake model file as the server would: its card from beside it. */
export async function loadFake(path: string) {
  const v = fakeVision();
  Object.assign(v, { card: JSON.parse(readFileSync(path.replace(/\.onnx$/, '.json'), 'utf8')) as ModelCard });
  return v;
}

/**
 * On an app started with one model (version 1, active): stores versions 2 and 3, activates 2 then 3, and
 * rolls back three times: 3 → 2 → 1, then a clear 409 at the bottom; the served model follows each step.
 */
export async function expectRollbackUndoes(
  app: FastifyInstance,
  root: string,
  served: () => string,
): Promise<void> {
  const list = async () =>
    (await app.inject(`${API}/admin/models`)).json() as {
      active: number;
      rollbackTo: number | null;
      activations: { version: number }[];
    };
  const sha: Record<number, string> = { 1: served() };
  for (const v of [2, 3]) {
    const m = fakeModel(join(root, `v${v}`), `model ${v} bytes`);
    const stored = await app.caseStore.models.add({
      sha256: m.card.modelSha256,
      name: 'fake-wbc',
      card: m.card,
      onnx: readFileSync(m.path),
      source: 'adaptation',
    });
    expect(stored.version).toBe(v);
    sha[v] = m.card.modelSha256;
  }
  const rollback = () => app.inject({ method: 'POST', url: `${API}/admin/models/rollback` });
  expect(await list()).toMatchObject({ active: 1, rollbackTo: null });
  expect((await rollback()).statusCode).toBe(409); // nothing activated after version 1 yet

  for (const v of [2, 3])
    expect((await app.inject({ method: 'POST', url: `${API}/admin/models/${v}/activate` })).statusCode).toBe(
      200,
    );
  expect(await list()).toMatchObject({ active: 3, rollbackTo: 2 });
  expect(served()).toBe(sha[3]);

  for (const [to, next] of [
    [2, 1],
    [1, null],
  ] as const) {
    const res = await rollback();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ version: to, active: true });
    expect(served()).toBe(sha[to]);
    expect(await list()).toMatchObject({ active: to, rollbackTo: next });
  }
  const bottom = await rollback();
  expect(bottom.statusCode).toBe(409);
  expect(bottom.json()).toMatchObject({ error: 'conflict' });
  expect(bottom.json().message).toMatch(/Nothing to roll back to: version 1 is the first version activated/);
  expect(served()).toBe(sha[1]);
  expect((await list()).activations.map((a) => a.version)).toEqual([1, 2, 3, 2, 1]);
}
