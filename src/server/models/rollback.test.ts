/**
 * Roll back as an undo stack: the replay of the activation log (pure), and the sequence activate 2,
 * activate 3, roll back, roll back, roll back through the API on SQLite (PostgreSQL: models.postgres.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { expectRollbackUndoes, fakeModel, loadFake } from '../../testing/model-versions.js';
import { buildApp } from '../app.js';
import { rollbackTarget, undoStack } from './rollback.js';
import { SwappableVision } from './swappable.js';

describe('undoStack / rollbackTarget', () => {
  it('walks back one activation per roll back, skipping the versions rolled back from', () => {
    expect(undoStack([1, 2, 3])).toEqual([1, 2, 3]);
    expect(rollbackTarget([1, 2, 3])).toBe(2);
    expect(rollbackTarget([1, 2, 3, 2])).toBe(1); // not 3: that one was just rolled back from
    expect(rollbackTarget([1, 2, 3, 2, 1])).toBeNull();
    expect(rollbackTarget([1])).toBeNull();
    expect(rollbackTarget([])).toBeNull();
  });

  it('stacks a forward activation of an older version, and ignores activating the active one again', () => {
    expect(undoStack([1, 2, 3, 1])).toEqual([1, 2, 3, 1]);
    expect(rollbackTarget([1, 2, 3, 1])).toBe(3);
    expect(rollbackTarget([1, 2, 2, 2])).toBe(1);
    expect(rollbackTarget([1, 2, 1, 2])).toBe(1);
  });
});

describe('roll back through the API (SQLite)', () => {
  const root = mkdtempSync(join(tmpdir(), 'hv-rollback-'));
  let app: FastifyInstance | undefined;
  afterAll(async () => {
    await app?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('activate 2, activate 3, roll back → 2, roll back → 1, roll back → 409', async () => {
    const first = fakeModel(join(root, 'first'), 'first model bytes');
    const vision = new SwappableVision(await loadFake(first.path));
    app = await buildApp({
      auth: 'off',
      vision,
      dataDir: join(root, 'data'),
      webDir: join(root, 'no-web'),
      rateLimits: false,
      models: { path: first.path, load: loadFake },
    });
    await expectRollbackUndoes(app, root, () => vision.card.modelSha256);
  });
});
