import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HematoError } from '../../errors.js';
import type { ImagePrediction } from '../../model/types.js';
import type { HeatmapData } from '../../pipeline.js';
import { openStore, SCHEMA_VERSION, type NewCase, type SqliteCaseStore } from './index.js';
import { createVersion1DataDir } from '../../testing/server.js';

let dir: string;
let store: SqliteCaseStore | undefined;

const prediction: ImagePrediction = {
  label: 'neutrophil',
  confidence: 0.8,
  probabilities: { lymphocyte: 0.2, neutrophil: 0.8 },
  needsReview: false,
  reviewReasons: [],
  cells: [],
};

const heatmapData: HeatmapData = {
  regions: [
    {
      x: 1,
      y: 2,
      size: 3,
      cam: Array.from({ length: 49 }, (_, i) => i / 48),
      box: { x: 1, y: 2, width: 3, height: 3, score: 0.9 },
      label: 'neutrophil',
    },
  ],
};

function newCase(image: Buffer, extra: Partial<NewCase> = {}): NewCase {
  return {
    file: 'x.jpg',
    image,
    imageType: 'image/jpeg',
    width: 4,
    height: 4,
    model: { name: 'm', version: '1', tta: false },
    prediction,
    heatmapPng: Buffer.from('png bytes'),
    ...extra,
  };
}

function heatmapFiles(): string[] {
  return readdirSync(join(dir, 'heatmaps'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hv-store-'));
});

afterEach(async () => {
  await store?.close();
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('CaseStore', () => {
  it('creates the schema with WAL, foreign keys and a migration record', async () => {
    store = openStore(dir);
    expect(await store.migrations()).toEqual([
      { version: 1, name: expect.any(String), appliedAt: expect.any(String) },
      { version: 2, name: expect.any(String), appliedAt: expect.any(String) },
      { version: 3, name: expect.any(String), appliedAt: expect.any(String) },
      { version: 4, name: expect.any(String), appliedAt: expect.any(String) },
    ]);
    expect(SCHEMA_VERSION).toBe(4);
    await store.close();
    const db = new Database(join(dir, 'hematovision.db'), { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = (
        db.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").all() as {
          name: string;
        }[]
      ).map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(['cases', 'reviews', 'schema_migrations']));
    } finally {
      db.close();
    }
  });

  it('stores images content-addressed and durable before the row, with model name and version', async () => {
    store = openStore(dir);
    const bytes = Buffer.from('some image bytes');
    const a = await store.add(newCase(bytes));
    const b = await store.add(
      newCase(bytes, { file: 'y.jpg', model: { name: 'm', version: '2', tta: true } }),
    );
    expect(a.imageSha256).toBe(b.imageSha256);
    expect(a.imageSha256).toMatch(/^[0-9a-f]{64}$/);
    const path = store.imagePath(a.imageSha256);
    expect(path).toBe(join(dir, 'images', a.imageSha256.slice(0, 2), a.imageSha256));
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(readFileSync(store.heatmapPath(a.heatmapSha256 as string)).toString()).toBe('png bytes');
    expect(a.model).toEqual({ name: 'm', version: '1', tta: false });
    expect(b.model).toEqual({ name: 'm', version: '2', tta: true });
    expect(a.id).not.toBe(b.id);
    expect(readdirSync(store.tmpDir)).toEqual([]); // no temp file left behind
    expect(await store.readImage(b)).toEqual(bytes);
  });

  it('keeps a blob that an insert in flight still needs when another case using it is deleted', async () => {
    store = openStore(dir);
    const bytes = Buffer.from('shared bytes');
    const first = await store.add(newCase(bytes));
    // The second insert finds the image already on disk, then writes a new heat map: delete the first case
    // while that heat map is being written, i.e. after the image check and before the row exists.
    const pending = store.add(newCase(bytes, { heatmapPng: Buffer.alloc(4 << 20, 1) }));
    const s = store;
    while (readdirSync(s.tmpDir).length === 0) await new Promise((r) => setImmediate(r));
    expect(await store.delete(first.id)).toBe(true);
    const second = await pending;
    expect(existsSync(store.imagePath(second.imageSha256))).toBe(true);
    expect(await store.delete(second.id)).toBe(true);
    expect(existsSync(store.imagePath(second.imageSha256))).toBe(false);
    expect(existsSync(store.heatmapPath(second.heatmapSha256 as string))).toBe(false);
  });

  it('commits concurrent inserts together, each acknowledged only once committed; a bad row fails alone', async () => {
    store = openStore(dir);
    const s = store;
    const adds = Array.from({ length: 8 }, (_, i) =>
      s.add(
        newCase(
          Buffer.from(`image ${i}`),
          i === 3 ? { file: null as unknown as string } : { file: `${i}.jpg` },
        ),
      ),
    );
    const settled = await Promise.allSettled(adds);
    expect(settled.map((r) => r.status)).toEqual([
      ...Array<string>(3).fill('fulfilled'),
      'rejected',
      ...Array<string>(4).fill('fulfilled'),
    ]);
    // Committed, as another connection sees it, by the time each add resolved.
    const other = new Database(join(dir, 'hematovision.db'), { readonly: true });
    try {
      const files = (
        other.prepare('SELECT file_name AS f FROM cases ORDER BY f').all() as { f: string }[]
      ).map((r) => r.f);
      expect(files).toEqual(['0.jpg', '1.jpg', '2.jpg', '4.jpg', '5.jpg', '6.jpg', '7.jpg']);
    } finally {
      other.close();
    }
  });

  it('deletes the review history with the case', async () => {
    store = openStore(dir);
    const c = await store.add(newCase(Buffer.from('a')));
    await store.addReview(c.id, { label: 'lymphocyte', reviewer: 'r' });
    expect(await store.reviews(c.id)).toHaveLength(1);
    expect(
      await store.addReview('00000000-0000-4000-8000-000000000000', { label: 'x', reviewer: 'r' }),
    ).toBeUndefined();
    await store.delete(c.id);
    expect(await store.get(c.id)).toBeUndefined();
    expect(await store.reviews(c.id)).toEqual([]);
  });

  it('refuses a database written by a newer schema instead of touching it', async () => {
    store = openStore(dir);
    await store.close();
    const db = new Database(join(dir, 'hematovision.db'));
    db.prepare("INSERT INTO schema_migrations VALUES (?, 'future', '2099-01-01')").run(SCHEMA_VERSION + 1);
    db.close();
    let error: unknown;
    try {
      store = openStore(dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(HematoError);
    expect((error as HematoError).code).toBe('database_too_new');
  });

  it('migrates a schema-1 database and keeps serving the heat maps it stored', async () => {
    const id = '11111111-1111-4111-8111-111111111111';
    const old = { id, image: Buffer.from('old image'), heatmapPng: Buffer.from('old heat map png') };
    const { imageSha256, heatmapSha256 } = createVersion1DataDir(dir, old);
    store = openStore(dir);
    expect((await store.migrations()).map((m) => m.version)).toEqual([1, 2, 3, 4]);
    expect((await store.migrations())[0].appliedAt).toBe('2024-01-01T00:00:00.000Z'); // history kept
    const c = await store.get(id);
    expect(c).toMatchObject({ imageSha256, heatmapSha256, hasHeatmapData: false, label: 'neutrophil' });
    expect(c?.model.tta).toBe(false); // analysed before test-time augmentation existed: one view
    expect(await store.readHeatmap(c as NonNullable<typeof c>)).toEqual(old.heatmapPng);
    expect(await store.readImage(c as NonNullable<typeof c>)).toEqual(old.image);
    expect(await store.readHeatmapData(id)).toBeNull();
    // New cases go into the migrated table beside the old one.
    const fresh = await store.add(newCase(Buffer.from('new'), { heatmapPng: undefined, heatmapData }));
    expect(fresh.hasHeatmapData).toBe(true);
    expect((await store.list({ limit: 10, offset: 0 })).total).toBe(2);
    await store.close();
    // Opening again applies nothing twice.
    store = openStore(dir);
    expect((await store.migrations()).map((m) => m.version)).toEqual([1, 2, 3, 4]);
    expect((await store.get(id))?.heatmapSha256).toBe(heatmapSha256);
  });

  it('keeps review reasons, and derives them for cases stored before reasons existed', async () => {
    store = openStore(dir);
    const flagged = {
      ...prediction,
      needsReview: true,
      reviewReasons: ['unfamiliar_cell' as const],
    };
    const kept = await store.add({ ...newCase(Buffer.from('r1')), prediction: flagged });
    expect(await store.get(kept.id)).toMatchObject({ needsReview: true, reviewReasons: ['unfamiliar_cell'] });
    // A schema-3 row: no reasons stored, an unflagged image whose second cell was flagged.
    const old = await store.add(newCase(Buffer.from('r2')));
    await store.close();
    const cell = (needsReview: boolean) => ({
      box: { x: 0, y: 0, width: 4, height: 4, score: 1 },
      label: 'neutrophil',
      confidence: needsReview ? 0.4 : 0.9,
      probabilities: { neutrophil: 0.9 },
      needsReview,
    });
    const db = new Database(join(dir, 'hematovision.db'));
    db.prepare('UPDATE cases SET review_reasons = NULL, needs_review = 0, cells = ? WHERE id = ?').run(
      JSON.stringify([cell(false), cell(true)]),
      old.id,
    );
    db.close();
    store = openStore(dir);
    const c = (await store.get(old.id))!;
    expect(c.needsReview).toBe(true);
    expect(c.reviewReasons).toEqual(['low_confidence']);
    expect(c.cells.map((x) => x.reviewReasons)).toEqual([[], ['low_confidence']]);
  });

  it('keeps heat-map data with the case and attaches the rendered map later', async () => {
    store = openStore(dir);
    const c = await store.add(newCase(Buffer.from('img'), { heatmapPng: undefined, heatmapData }));
    expect(c).toMatchObject({ heatmapSha256: null, hasHeatmapData: true });
    expect(await store.readHeatmapData(c.id)).toEqual(heatmapData);
    expect(heatmapFiles()).toEqual([]); // nothing rendered yet
    const none = await store.add(newCase(Buffer.from('img2'), { heatmapPng: undefined }));
    expect(none).toMatchObject({ heatmapSha256: null, hasHeatmapData: false });
    expect(await store.readHeatmapData(none.id)).toBeNull();

    const png = Buffer.from('rendered png');
    const attached = await store.attachHeatmap(c.id, png);
    expect(attached?.heatmapSha256).toMatch(/^[0-9a-f]{64}$/);
    const sha = attached?.heatmapSha256 as string;
    expect(readFileSync(store.heatmapPath(sha))).toEqual(png);
    expect((await store.get(c.id))?.heatmapSha256).toBe(sha);
    expect(readdirSync(store.tmpDir)).toEqual([]);

    // A later, different render does not replace it, and leaves no file behind.
    const other = await store.attachHeatmap(c.id, Buffer.from('another render'));
    expect(other?.heatmapSha256).toBe(sha);
    expect(heatmapFiles()).toEqual([sha]);

    // A case deleted meanwhile: undefined, and its render is not kept.
    expect(await store.delete(none.id)).toBe(true);
    expect(await store.attachHeatmap(none.id, Buffer.from('orphan'))).toBeUndefined();
    expect(existsSync(store.heatmapPath(createHash('sha256').update('orphan').digest('hex')))).toBe(false);

    expect(await store.delete(c.id)).toBe(true);
    expect(existsSync(store.heatmapPath(sha))).toBe(false);
  });

  it('lets concurrent renders of one case attach without corrupting anything', async () => {
    const opened = openStore(dir);
    store = opened;
    const c = await opened.add(newCase(Buffer.from('img'), { heatmapPng: undefined, heatmapData }));
    const renders = [Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 2)];
    const results = await Promise.all(renders.map((png) => opened.attachHeatmap(c.id, png)));
    const sha = (await store.get(c.id))?.heatmapSha256 as string;
    expect(results.map((r) => r?.heatmapSha256)).toEqual([sha, sha, sha]);
    const kept = renders.find((r) => createHash('sha256').update(r).digest('hex') === sha);
    expect(kept).toBeDefined();
    expect(readFileSync(store.heatmapPath(sha)).equals(kept as Buffer)).toBe(true);
    expect(heatmapFiles()).toEqual([sha]); // the losing render was removed
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });

  it('removes stale temp files at open but leaves recent ones', async () => {
    store = openStore(dir);
    await store.close();
    const old = join(dir, 'tmp', 'old.part');
    const recent = join(dir, 'tmp', 'recent.part');
    writeFileSync(old, 'x');
    writeFileSync(recent, 'y');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    store = openStore(dir);
    expect(readdirSync(join(dir, 'tmp'))).toEqual(['recent.part']);
  });
});
